"""Live delivery of the session event log: WebSocket and Server-Sent Events routes.

The log (`SessionEvent`) is the truth; the channel layer only wakes listeners up. A service's
`events.record` publishes, once its transaction has committed, a wake-up to the group of each
session and of each player concerned (`publish`). A listener (`streams.LiveStream`) reads the
log after the last id it sent, through the same reads as the REST pages (`sessions_app.feeds`),
so what it sends is in id order (ids are in commit order), seen by the rules of the events
endpoints, and nothing is lost if a wake-up is: every listener also reads the log on its
keep-alive tick. A replay (`?after=`, `Last-Event-ID`) is the same read, started once the
listener is subscribed, so nothing falls between the replay and what follows.

Modules: `publish` (the publishing side, any process), `groups` (group names), `limits` (live
connections per player), `auth` (credentials of a stream), `streams` (what a listener does,
whatever carries it), `consumers` (the WebSocket and SSE consumers), `routing` (their URLs).
"""
