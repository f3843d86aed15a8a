"""factory_boy factories for every model. Sessions made here go through no service: use
`make_session` in conftest for a session whose rendered members are in step."""

import factory
from django.utils import timezone

from players_app.models import Player
from sessions_app import models


class PlayerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Player
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"player{n}")
    password = factory.PostGenerationMethodCall("set_password", "pass-word-123")

    @factory.post_generation
    def in_players_group(self, create, extracted, **kwargs):
        if create and extracted is not False:
            from players_app.services import default_group

            self.groups.add(default_group())
            self.save()


class SongFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Song

    title = factory.Sequence(lambda n: f"Song {n}")
    artist = factory.Sequence(lambda n: f"Artist {n}")


class ChartFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Chart

    song = factory.SubFactory(SongFactory)
    difficulty = "HARD"
    level = 10


class ScoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Score

    chart = factory.SubFactory(ChartFactory)
    value = 900000
    time_achieved = factory.LazyFunction(timezone.now)
