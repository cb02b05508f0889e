# Fits every depth profile of a campaign; run with make -j to use all cores.
#   make -f fit-campaign.mk -C DATA_DIR CONFIG=nmc-coin-cell-cu-tube
# A profile is refitted only when it, or the configuration, is newer than
# its result: change a fit setting and `make` refits the whole campaign.
CONFIG ?= nmc-coin-cell-cu-tube
PROFILES := $(filter-out %.fit.h5,$(wildcard profile-*.h5))
RESULTS := $(PROFILES:.h5=.fit.h5)

all: $(RESULTS)

%.fit.h5: %.h5
	cmx-fit -q -c $(CONFIG) $< -o $@ > /dev/null

.PHONY: all
