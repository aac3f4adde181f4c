# Upscaling models from the npm registry (UpscalerJS, MIT licence), fetched
# with `npm pack` at a pinned version and unpacked into build/models/<name>/.
# `make models` is incremental: one stamp per package.
#
#   build/models/default/model.json                   (x2)
#   build/models/esrgan-{slim,medium,thick}/x{2,3,4,8}/model.json + shards

NPM            ?= npm
UPSCALERJS_VER := 1.0.0
MODEL_PKGS     := esrgan-slim esrgan-medium esrgan-thick default-model
MODEL_STAMPS   := $(MODEL_PKGS:%=$(B)/models/.%.stamp)

models: $(MODEL_STAMPS)

# Folder name under build/models: "default-model" is installed as "default".
model_dir = $(if $(filter default-model,$(1)),default,$(1))

$(B)/models/.%.stamp: mk/models.mk
	@mkdir -p $(B)/npm $(B)/models
	@command -v $(NPM) >/dev/null 2>&1 || { \
	  echo "models: '$(NPM)' not found; install npm (apt-get install npm) to fetch @upscalerjs/$*" >&2; exit 1; }
	@tgz=$(B)/npm/upscalerjs-$*-$(UPSCALERJS_VER).tgz; \
	if [ ! -s "$$tgz" ]; then \
	  echo "npm pack @upscalerjs/$*@$(UPSCALERJS_VER)"; \
	  ( cd $(B)/npm && $(NPM) pack --silent "@upscalerjs/$*@$(UPSCALERJS_VER)" >/dev/null ) || { \
	    rm -f "$$tgz"; \
	    echo "models: 'npm pack @upscalerjs/$*@$(UPSCALERJS_VER)' failed (no network or registry access?)" >&2; exit 1; }; \
	fi; \
	dst=$(B)/models/$(call model_dir,$*); tmp=$(B)/npm/x-$*; \
	rm -rf "$$tmp" "$$dst" && mkdir -p "$$tmp" && \
	tar -xzf "$$tgz" -C "$$tmp" package/models package/LICENSE || { \
	  echo "models: $$tgz has no package/models folder" >&2; exit 1; }; \
	mv "$$tmp/package/models" "$$dst" && cp "$$tmp/package/LICENSE" "$$dst/LICENSE" && rm -rf "$$tmp"
	@touch $@

.PHONY: models

# Pure-JS TF.js for tests/reference/gen_tfjs_ref.js (a developer tool: not
# needed to build or test). Installed into build/npm-ref, pinned by
# tests/reference/package.json.
npm-ref: $(B)/npm-ref/.stamp
$(B)/npm-ref/.stamp: tests/reference/package.json
	@mkdir -p $(B)/npm-ref
	cp tests/reference/package.json $(B)/npm-ref/package.json
	cd $(B)/npm-ref && $(NPM) install --no-audit --no-fund --silent
	@touch $@

.PHONY: npm-ref
