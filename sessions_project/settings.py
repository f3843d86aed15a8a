"""Settings for the session service, read from the environment.

Every default is safe: debug mode is off unless DEBUG=1, and without DEBUG=1 the start-up
stops unless SECRET_KEY is a real secret. Production sets SECRET_KEY, ALLOWED_HOSTS and
DATABASE_URL. Malformed values fail loudly at start-up.
"""

import ipaddress
import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from sessions_project.logs import LOG_FORMATS, logging_config
from sessions_project.throttling import parse_rate

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {raw!r}")


def env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


# --- Secret key and debug mode (safe defaults) ---------------------------------------------
# Debug is off unless asked for, and a server without DEBUG=1 refuses to start without a real
# key: a key anyone can read lets anyone sign a superuser's token.
MIN_SECRET_KEY_LENGTH = 50
# Keys that were ever written in this repository; never accepted outside debug mode.
KNOWN_DEVELOPMENT_KEYS = frozenset({"django-insecure-development-only-do-not-use-in-production"})
# DEBUG=1 without SECRET_KEY: a random key made on first use and kept here (var/ is ignored by git).
DEVELOPMENT_KEY_FILE = Path(env_str("DEVELOPMENT_KEY_FILE", str(BASE_DIR / "var" / "development-secret-key")))


def development_secret_key(path: Path) -> str:
    """This checkout's own development key, created on first use and reused after."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(64) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def refuse_weak_secret_key(key: str) -> None:
    if not key:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY to a random secret of at least "
            f"{MIN_SECRET_KEY_LENGTH} characters (python -c 'import secrets; print(secrets.token_urlsafe(64))'), "
            "or set DEBUG=1 for development."
        )
    if key in KNOWN_DEVELOPMENT_KEYS or key.startswith("django-insecure"):
        raise ImproperlyConfigured("SECRET_KEY is a known development key: set a secret of your own.")
    if DEVELOPMENT_KEY_FILE.exists() and key == DEVELOPMENT_KEY_FILE.read_text().strip():
        raise ImproperlyConfigured(f"SECRET_KEY is this checkout's development key ({DEVELOPMENT_KEY_FILE}).")
    if len(key) < MIN_SECRET_KEY_LENGTH or len(set(key)) < 5:
        raise ImproperlyConfigured(
            f"SECRET_KEY is too short or too simple: use at least {MIN_SECRET_KEY_LENGTH} random characters."
        )


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")
if DEBUG:
    SECRET_KEY = SECRET_KEY or development_secret_key(DEVELOPMENT_KEY_FILE)
else:
    refuse_weak_secret_key(SECRET_KEY)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# HTTPS-only behaviour is opt-in, so DEBUG=0 still serves plain HTTP behind a proxy or locally.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("USE_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "rest_framework_simplejwt.token_blacklist",
    "players_app",
    "sessions_app",
]

MIDDLEWARE = [
    # First: the request id is set before anything can log, and the timing covers the rest.
    "sessions_project.observability.RequestObservabilityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # auth: CORS answers preflights before anything can ask for a token; API responses get
    # their cache and sniffing headers.
    "corsheaders.middleware.CorsMiddleware",
    "sessions_project.middleware.ApiResponseHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "sessions_project.middleware.RequestBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Paths are exactly as the seed writes them: no slash is appended, no client is redirected.
APPEND_SLASH = False

ROOT_URLCONF = "sessions_project.urls"
WSGI_APPLICATION = "sessions_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: SQLite file by default (nothing to install), DATABASE_URL for anything else.
DEFAULT_SQLITE_PATH = BASE_DIR / "var" / "db.sqlite3"
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{DEFAULT_SQLITE_PATH}")
try:
    _database = dj_database_url.parse(DATABASE_URL)
except Exception as exc:  # dj-database-url raises several types for a malformed URL
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
if _database["ENGINE"] == "django.db.backends.sqlite3":
    if _database["NAME"] and _database["NAME"] != ":memory:":
        Path(_database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    _database["OPTIONS"] = {
        # IMMEDIATE takes the write lock when a transaction starts, so two workers updating
        # one session queue up instead of failing with "database is locked" mid-transaction.
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    # Persistent connections: a new PostgreSQL connection per request costs ~8x throughput.
    _database["CONN_MAX_AGE"] = env_int("CONN_MAX_AGE", 600)
    _database["CONN_HEALTH_CHECKS"] = True
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Shared by every worker (throttle counters): Redis when REDIS_URL is set, else a table in the
# database (created by the migration players_app 0002, so `migrate` is enough).
REDIS_URL = env_str("REDIS_URL", "")
CACHES: dict[str, dict[str, Any]]
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "cache_entries",
            # Past MAX_ENTRIES Django culls a third of the rows, live counters included: set
            # high, so that spraying keys cannot wipe a throttle's counts.
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }

# Live delivery (sessions_app.live): the channel layer wakes listeners up when events are
# written. In-process memory by default (one process serves REST and live: `make run`); Redis
# with REDIS_URL, which is what reaches a listener in another process (`make serve`, several
# hosts). Only wake-ups travel through it: a listener reads the events from the database.
ASGI_APPLICATION = "sessions_project.asgi.application"
CHANNEL_LAYERS: dict[str, dict[str, Any]]
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env_str("LIVE_CHANNEL_PREFIX", "sessions-live")},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# At most this many live connections (WebSocket and SSE together) per player at once; the next
# is refused (WebSocket close 4429, HTTP 429).
LIVE_MAX_CONNECTIONS_PER_PLAYER = env_int("LIVE_MAX_CONNECTIONS_PER_PLAYER", 5, 1)
# A listener reads the log at least this often even without a wake-up, and an SSE stream sends
# a comment line then, so that proxies keep the connection open.
LIVE_KEEPALIVE_SECONDS = env_int("LIVE_KEEPALIVE_SECONDS", 15, 1)
# A client that has not taken a message within this many seconds (its socket stays full) is a
# slow consumer: disconnected (WebSocket close 4408; the SSE stream ends), never buffered for.
LIVE_SEND_TIMEOUT_SECONDS = env_int("LIVE_SEND_TIMEOUT_SECONDS", 10, 1)
# With Redis, a write publishes its wake-ups after its commit from its own thread: it waits at
# most this long for Redis (milliseconds), and after a failure leaves Redis alone for
# LIVE_PUBLISH_BACKOFF_SECONDS (listeners read the log on their keep-alive tick meanwhile).
LIVE_PUBLISH_TIMEOUT_MS = env_int("LIVE_PUBLISH_TIMEOUT_MS", 50, 1)
LIVE_PUBLISH_BACKOFF_SECONDS = env_int("LIVE_PUBLISH_BACKOFF_SECONDS", 5, 0)

AUTH_USER_MODEL = "players_app.Player"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["players_app.authentication.StatelessJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["sessions_project.renderers.OrjsonRenderer"],
    "DEFAULT_PARSER_CLASSES": ["sessions_project.parsers.StrictJSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "sessions_project.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    # No DRF throttles: wrong join passwords (sessions_app.services), failed sign-ins and
    # registrations (players_app.throttles) are counted by their own rules.
    "DEFAULT_THROTTLE_CLASSES": [],
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env_int("JWT_ACCESS_SECONDS", 15 * 60, 1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env_int("JWT_REFRESH_SECONDS", 7 * 24 * 3600, 1)),
    "AUTH_HEADER_TYPES": ("jwt", "JWT", "Bearer"),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "UPDATE_LAST_LOGIN": False,
    "TOKEN_OBTAIN_SERIALIZER": "players_app.api.serializers.PlayerTokenObtainPairSerializer",
    "TOKEN_REFRESH_SERIALIZER": "players_app.api.serializers.PlayerTokenRefreshSerializer",
    # Every refresh answers a new refresh token and revokes the one it was given.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Session service API",
    "DESCRIPTION": (
        "Create, find, join and leave multiplayer sessions. Every error is an RFC 9457 "
        "problem document with a stable `code`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No online validator badge: it would fetch from validator.swagger.io (and tell it our URL).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "ENUM_NAME_OVERRIDES": {},
    # Answers every route can give whatever its view declares (see the hook's docstring).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "sessions_project.schema.document_cross_cutting_answers",
    ],
}

# Domain settings.
OPEN_REGISTRATION = env_bool("OPEN_REGISTRATION", True)
SESSION_IDLE_TIMEOUT = env_int("SESSION_IDLE_TIMEOUT", 3600)
RESERVATION_TTL = env_int("RESERVATION_TTL", 300, 1)
JOIN_PASSWORD_MAX_FAILURES = env_int("JOIN_PASSWORD_MAX_FAILURES", 5, 1)
JOIN_PASSWORD_WINDOW = env_int("JOIN_PASSWORD_WINDOW", 60, 1)
# Joins by a code that names no live session, per player, within the window (seconds), before
# every join by code of that player gets 429.
JOIN_CODE_MAX_FAILURES = env_int("JOIN_CODE_MAX_FAILURES", 5, 1)
JOIN_CODE_WINDOW = env_int("JOIN_CODE_WINDOW", 60, 1)
# PBKDF2 rounds for join passwords: ~3 ms per check instead of Django's ~0.3 s for logins,
# so a join stays cheap; wrong guesses are throttled instead.
JOIN_PASSWORD_ITERATIONS = env_int("JOIN_PASSWORD_ITERATIONS", 10_000, 1)
SCORE_IMPORT_GAP = env_int("SCORE_IMPORT_GAP", 2 * 3600, 1)
# Days a session event is kept (GET .../events, admin); purge_sessions deletes older ones.
EVENT_RETENTION_DAYS = env_int("EVENT_RETENTION_DAYS", 30, 1)

# Webhooks (README "Webhooks"): delivery attempts per event and endpoint, the backoff between
# them (base * 2^(attempt-1), at most the cap), when a failing endpoint is disabled (that many
# dead deliveries in a row, or failing without a success for that long), outgoing timeouts
# (seconds), and the address rule: private, loopback, link-local and reserved addresses are
# refused unless WEBHOOK_ALLOW_PRIVATE_ADDRESSES=1 (a webhook must not reach our own network).
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8, 1)
WEBHOOK_RETRY_BASE_SECONDS = env_int("WEBHOOK_RETRY_BASE_SECONDS", 30, 1)
WEBHOOK_RETRY_MAX_SECONDS = env_int("WEBHOOK_RETRY_MAX_SECONDS", 3600, 1)
WEBHOOK_DISABLE_AFTER_DEAD = env_int("WEBHOOK_DISABLE_AFTER_DEAD", 5, 1)
WEBHOOK_DISABLE_AFTER_SECONDS = env_int("WEBHOOK_DISABLE_AFTER_SECONDS", 3 * 24 * 3600, 1)
WEBHOOK_CONNECT_TIMEOUT = env_int("WEBHOOK_CONNECT_TIMEOUT", 3, 1)
WEBHOOK_READ_TIMEOUT = env_int("WEBHOOK_READ_TIMEOUT", 5, 1)
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env_bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False)
WEBHOOK_HTTPS_ONLY = env_bool("WEBHOOK_HTTPS_ONLY", False)

# Input limits: what one request may send and one `data` object may hold.
# Above REQUEST_BODY_MAX_BYTES an API request gets 413 body_too_large (nothing is read past it).
REQUEST_BODY_MAX_BYTES = env_int("REQUEST_BODY_MAX_BYTES", 1024 * 1024, 1)
# A session's, score's, song's or chart's `data`: compact UTF-8 JSON size and nesting depth.
DATA_MAX_BYTES = env_int("DATA_MAX_BYTES", 16 * 1024, 1)
DATA_MAX_DEPTH = env_int("DATA_MAX_DEPTH", 32, 1)

# Abuse limits on sessions: per-player quotas (0: no limit; session:* accounts are exempt) and
# the join-password throttle across all players of one session (JOIN_PASSWORD_WINDOW applies).
QUOTA_LIVE_SESSIONS_PER_HOST = env_int("QUOTA_LIVE_SESSIONS_PER_HOST", 20)
QUOTA_PENDING_INVITES_PER_SESSION = env_int("QUOTA_PENDING_INVITES_PER_SESSION", 100)
JOIN_PASSWORD_SESSION_MAX_FAILURES = env_int("JOIN_PASSWORD_SESSION_MAX_FAILURES", 20, 1)

# --- Auth and the edge: throttles, CORS, database timeouts --------------------------------
# Failed token requests per username and per client address, registrations per client
# address: "N/second|minute|hour|day", or 0 for no limit. Admin sign-ins share the login one.
LOGIN_FAILURE_RATE = env_str("LOGIN_FAILURE_RATE", "10/minute")
REGISTRATION_RATE = env_str("REGISTRATION_RATE", "30/hour")
# The client address is the socket's peer unless it is one of these proxies (addresses or
# networks, comma-separated): then X-Forwarded-For is walked from the right.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
try:
    TRUSTED_PROXY_NETWORKS = [ipaddress.ip_network(item, strict=False) for item in TRUSTED_PROXIES]
except ValueError as exc:
    raise ImproperlyConfigured(f"TRUSTED_PROXIES must list addresses or networks: {exc}") from None
for _name in ("LOGIN_FAILURE_RATE", "REGISTRATION_RATE"):
    try:
        parse_rate(globals()[_name])
    except ValueError as exc:
        raise ImproperlyConfigured(f"{_name}: {exc}") from None

# Browser games on other origins: none allowed unless listed (scheme://host[:port], comma-separated).
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", [])
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_HEADERS = (
    "authorization",
    "content-type",
    "if-match",
    "if-none-match",
    "x-session-password",
    "x-request-id",
)
CORS_EXPOSE_HEADERS = ("ETag", "Link", "Retry-After", "X-Request-ID")

# PostgreSQL: a stalled database answers 503 within seconds instead of holding the worker.
# Connect timeout in seconds (libpq: at least 2); statement and lock timeouts in milliseconds
# (0: none). Management commands other than runserver (migrate, seed_demo, purge_sessions, ...)
# legitimately run long: manage.py marks them, and they get no statement or lock timeout.
DATABASE_CONNECT_TIMEOUT = env_int("DATABASE_CONNECT_TIMEOUT", 3, 1)
DATABASE_STATEMENT_TIMEOUT = env_int("DATABASE_STATEMENT_TIMEOUT", 4000)
DATABASE_LOCK_TIMEOUT = env_int("DATABASE_LOCK_TIMEOUT", 3000)
RUNNING_MANAGEMENT_COMMAND = env_str("SESSIONS_MANAGEMENT_COMMAND", "") not in ("", "runserver")
# DATABASE_POOLER=pgbouncer: DATABASE_URL names a pgbouncer in transaction mode (docs/scaling.md),
# where consecutive transactions of one client may run on different server connections. Then
# nothing may outlive a transaction on the server: no server-side cursors (Django declares them
# WITH HOLD outside a transaction: `.iterator()`, admin's CSV export), and no startup `options`
# (pgbouncer refuses that parameter, and ignoring it would drop the timeouts silently): set the
# statement and lock timeouts on the database role instead (ALTER ROLE ... SET statement_timeout).
# Prepared statements are already off (Django's psycopg default); advisory locks are all
# transaction-level (pg_advisory_xact_lock).
DATABASE_POOLERS = ("", "pgbouncer")
DATABASE_POOLER = env_str("DATABASE_POOLER", "").strip().lower()
if DATABASE_POOLER not in DATABASE_POOLERS:
    raise ImproperlyConfigured(f"DATABASE_POOLER must be empty or 'pgbouncer', not {DATABASE_POOLER!r}")
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["connect_timeout"] = max(DATABASE_CONNECT_TIMEOUT, 2)
    if DATABASE_POOLER == "pgbouncer":
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    elif not RUNNING_MANAGEMENT_COMMAND:
        _options["options"] = (
            f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT} -c lock_timeout={DATABASE_LOCK_TIMEOUT}"
        )

# --- Operating it: logs, metrics, readiness -----------------------------------------------
# Logs: one JSON object per line on stderr, or readable lines with LOG_FORMAT=console (`make
# run` sets it). Every line of a request carries its request id (sessions_project/logs.py).
LOG_FORMAT = env_str("LOG_FORMAT", "json").strip().lower()
if LOG_FORMAT not in LOG_FORMATS:
    raise ImproperlyConfigured(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {LOG_FORMAT!r}")
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").strip().upper()
LOGGING = logging_config(LOG_FORMAT, LOG_LEVEL)

# GET /metrics: answered to clients in these networks (loopback by default; empty: none), or
# to any client that sends `Authorization: Bearer <METRICS_TOKEN>` when that is set.
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", ["127.0.0.0/8", "::1/128"])
try:
    METRICS_ALLOWED_NETWORK_LIST = [ipaddress.ip_network(item, strict=False) for item in METRICS_ALLOWED_NETWORKS]
except ValueError as exc:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS must list addresses or networks: {exc}") from None
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
# Figures that need queries (sessions by status, players in live sessions) are computed at
# most once per this many seconds, shared through the cache by every worker and host.
METRICS_LIVE_FIGURES_SECONDS = env_int("METRICS_LIVE_FIGURES_SECONDS", 5, 1)
