# The service's image: the app (gunicorn, the default command), the live process (uvicorn),
# the sweeper and the webhook worker all run from it with different commands (compose.yaml).
# Build: docker build -t sessions .   Configuration comes from the environment at run time
# (README "Configuration"); nothing secret is baked in.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --system --uid 10001 --no-create-home --home-dir /app --shell /usr/sbin/nologin app

# The runtime lock alone (every package pinned with its hashes): pip refuses any file whose
# hash differs. Copied first so that code changes do not reinstall the dependencies.
COPY requirements.txt .
RUN pip install --require-hashes -r requirements.txt

COPY . .
# Static files (admin, API docs) collected at build time; whitenoise serves them. The settings
# refuse to load without a real key, so this step gets a random one that is not kept.
RUN DEBUG=0 SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(64))')" \
    python manage.py collectstatic --noinput

# The code and static files stay root's (read-only to the service); the service runs as `app`.
USER app
EXPOSE 8000 8001
CMD ["gunicorn", "--config", "sessions_project/gunicorn_conf.py", "--bind", "0.0.0.0:8000"]
