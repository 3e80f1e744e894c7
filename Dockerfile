# Workflow Station's worker and gateway, one image: `docker build -t workflow-station .`
#
#   docker run -e GATEWAY_API_KEYS=acme:... workflow-station       # the gateway on :8000
#   docker run workflow-station workflow-station worker --endpoint all   # a worker
#
# The build stage installs the runtime lock (requirements.lock: no test, lint or dev-stack
# packages) and the project into a virtualenv; the runtime stage is that virtualenv alone, run
# by an unprivileged user. `.dockerignore` keeps `.env`, `.venv`, `.data` and the tests out of
# the build context. temporal-compose.yml builds this file.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# The lock first, so a code change reuses the dependency layer.
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY . .
RUN pip install --no-deps . && rm -rf /src

FROM python:3.11-slim AS runtime
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /app app
COPY --from=build /opt/venv /opt/venv
# Bound to every interface, so the gateway refuses to start without GATEWAY_API_KEYS: it reads
# the address it binds from GATEWAY_HOST, the same setting its open-exposure guard checks.
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 GATEWAY_HOST=0.0.0.0 GATEWAY_PORT=8000
WORKDIR /app
USER app
EXPOSE 8000
CMD ["workflow-station", "gateway"]
