/*
 * fuzz_config.c — libFuzzer target for the config file parser (inih and
 * config.c): the input is the file, read through a memfd the way
 * config_load_file reads any path, then validated. A rejected file must say
 * why; an accepted one must leave a config that config_term frees cleanly.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "worker/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("walrev-fuzz-config", MFD_CLOEXEC);
    if (fd < 0) abort();
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0) abort();
        off += (size_t)n;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    Config cfg;
    config_init(&cfg);
    WrError err = {0};
    WrStatus st = config_load_file(&cfg, path, &err);
    if (st != WR_OK && (st != WR_INVALID || strlen(err.msg) == 0)) abort();
    if (st == WR_OK) {
        st = config_validate(&cfg, &err);
        if (st != WR_OK && strlen(err.msg) == 0) abort();
        if (cfg.source_conninfo) free(config_redact_conninfo(cfg.source_conninfo));
    }
    config_term(&cfg);
    close(fd);
    return 0;
}
