# Tokenizer: bpe_simple_vocab_16e6.txt.gz is read with zlib (engine/sd/tokenizer.c).
DEPS_LIBS += -lz
