# Brandkeep: multi-stage build on the slim Python image, run as a non-root user.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /srv/brandkeep
COPY pyproject.toml README.md ./
COPY app ./app
# Installed in place: templates, static files and migrations stay beside the code.
RUN /opt/venv/bin/pip install -e .
COPY alembic.ini ./
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BRANDKEEP_ENV=production \
    BRANDKEEP_DATA_DIR=/var/lib/brandkeep
# Pango and fonts for WeasyPrint's PDF reports. Not pinned: the base image's Debian
# release fixes their versions, and pins would break on its next security update.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 brandkeep \
    && useradd --system --uid 10001 --gid brandkeep --home-dir /var/lib/brandkeep --create-home brandkeep
COPY --from=build /opt/venv /opt/venv
COPY --from=build /srv/brandkeep /srv/brandkeep
WORKDIR /srv/brandkeep
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
CMD ["brandkeep", "serve", "--host", "0.0.0.0", "--port", "8000"]
