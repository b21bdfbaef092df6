# The two commands of the README: `make up` and `make test`.
.PHONY: up down deploy undeploy test test-compat test-unit images lint bench clean-test swarm-up swarm-down

up:            ## set up what is missing and start the platform on http://127.0.0.1:8000
	@scripts/up.sh

down:          ## stop the hub and user containers (user volumes are kept)
	@scripts/down.sh

deploy:        ## the compose deployment: the hub in a container on http://127.0.0.1:8000 (same settings as up)
	@scripts/deploy.sh

undeploy:      ## stop the compose deployment and its user containers (volumes are kept)
	@scripts/undeploy.sh

images:        ## build (or reuse) the lab images and the hub image
	@scripts/engine.sh && scripts/images.sh --hub

test:          ## everything: unit, then integration against the real engine, hub and labs
	@scripts/test.sh

test-compat:   ## unit tests and an integration subset on JupyterHub 5.5.x (.venv-compat; the default is 6)
	@scripts/test-compat.sh

test-unit:     ## fast tests, no engine (the store's also on a local PostgreSQL)
	@scripts/install.sh && JHDS_TEST_POSTGRES_URL="$$(scripts/postgres.sh)" .venv/bin/pytest tests/unit -q

lint:
	@scripts/install.sh && .venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/lint-imports

bench:         ## every benchmark (prints figures and ratios)
	@scripts/test.sh --bench

clean-test:    ## remove containers and volumes left by an interrupted test run
	@scripts/clean-test.sh

swarm-up:      ## a two-node test Docker Swarm on this machine (images loaded); prints the manager's DOCKER_HOST
	@scripts/swarm.sh up

swarm-down:    ## remove the test swarm entirely (the main engine is not touched)
	@scripts/swarm.sh down
