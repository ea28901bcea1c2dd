// The token data pipeline in one include: corpus, token shards, datasets with batch sampling, and data_prepare.
#pragma once

#include "gdn2/data/corpus.h"
#include "gdn2/data/dataset.h"
#include "gdn2/data/prepare.h"
#include "gdn2/data/shard.h"
