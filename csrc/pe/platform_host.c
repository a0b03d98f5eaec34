/*
 * The PE program on the host: reads the image from the file named on the command line, writes the records to
 * the file the image names. No instruction counter (the counters read 0).
 *
 *     pe-host image.bin      (exit status: 0, or the negative pe_run code as a positive number)
 */
#include "pe.h"

#include <stdio.h>
#include <stdlib.h>

#define ARENA_BYTES (64u << 20)

static FILE *out;

uint32_t plat_counter(void)
{
    return 0;
}

int plat_open_output(const char *path)
{
    out = fopen(path, "wb");
    return out == NULL;
}

int plat_write(const void *data, uint32_t bytes)
{
    return fwrite(data, 1, bytes, out) != bytes;
}

void plat_close_output(void)
{
    if (out && fclose(out))
        fputs("pe-host: cannot close the output file\n", stderr);
    out = NULL;
}

int main(int argc, char **argv)
{
    FILE *f;
    long size;
    uint8_t *image, *arena;
    int rc;
    if (argc != 2) {
        fputs("usage: pe-host IMAGE\n", stderr);
        return 2;
    }
    f = fopen(argv[1], "rb");
    if (!f || fseek(f, 0, SEEK_END) || (size = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET)) {
        fprintf(stderr, "pe-host: cannot read %s\n", argv[1]);
        return 2;
    }
    image = (uint8_t *)malloc((size_t)size);
    arena = (uint8_t *)malloc(ARENA_BYTES);
    if (!image || !arena || fread(image, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "pe-host: cannot load %s\n", argv[1]);
        return 2;
    }
    fclose(f);
    rc = (unsigned long)size > 0xFFFFFFFFul ? -1 : pe_run(image, (uint32_t)size, arena, ARENA_BYTES);
    free(image);
    free(arena);
    return -rc;
}
