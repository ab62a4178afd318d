# The two commands of the README: `make train` (set up, then the default job) and `make test`.
.PHONY: setup train test test-slow lint
ARGS ?=

setup:
	@bash scripts/setup.sh

train: setup
	.venv/bin/python -m gan_lab.train $(ARGS)

test: setup
	bash scripts/test_deps.sh  # torch-fidelity for the Inception tests, in .cache/test-deps only
	.venv/bin/python -m pytest -q -n 2 $(ARGS)   # two workers: one per core (each test pins one thread)

test-slow: setup
	bash scripts/test_deps.sh
	.venv/bin/python -m pytest -q -n 2 -m slow $(ARGS) || [ $$? -eq 5 ]  # 5: no slow test selected

lint: setup
	.venv/bin/ruff check gan_lab tests scripts
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict -q -d .cache/site   # the docs site: no broken link
