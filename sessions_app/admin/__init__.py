"""Admin for staff, one module per area (Django imports this package, which registers them):

    sessions    the session admin: its list, page, CSV export and actions (close, remove a player)
    membership  members, teams, invites, reservations, join password failures, view stamps
    catalog     songs, charts and scores
    players     the player admin, with what it needs from sessions (registered from here, so
                players_app imports nothing from sessions_app)
    events      the session event log (read-only), and a session's latest events on its page
    webhooks    webhook endpoints (register, test, enable, disable), deliveries with their
                attempts (replay), the delivery worker's place in the event log
    dashboard   the numbers on the admin index (the `session_dashboard` template tag)
    mixins      what the admins share (AdminActor, service actions, search and read-only mixins)

Every action calls the services (sessions_app/services/), one call per selected row.
"""

from django.contrib import admin

from . import catalog, events, membership, players, sessions, webhooks  # noqa: F401  (registers their admins)

admin.site.site_header = "Session service admin"
admin.site.site_title = "Session service"
admin.site.index_title = "Dashboard"
