/*
 * The qdq command's files (files.c): input mapped, output written under a temporary name (an
 * unnamed file where the file system allows) and put in place at the end, whole or not at all.
 */
#ifndef QDQ_FILES_H
#define QDQ_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The file mapped read-only (*len its size; an empty file maps to ""). NULL with errno. */
const char *files_map(const char *path, size_t *len);
void files_unmap(const char *p, size_t len);
/* Bytes [p, p + n) of a mapping read for now: their pages leave this process's memory (the
 * page cache keeps them; a later read maps them again). */
void files_release(const void *p, size_t n);
/* A small file's text, NUL-terminated (malloc). NULL with errno. */
char *files_read_text(const char *path);
/* n bytes at fd's current offset, whole. 0, or -1 with errno. */
int files_write(int fd, const char *p, size_t n);
/* A file holding exactly these bytes, put in place atomically. 0, or -1 with errno. */
int files_write_whole(const char *path, const char *p, size_t n);

/* The output file for path, not yet visible under its name. fd, or -1 with errno. */
int files_create(const char *path);
/* Puts the output file in place under path (replacing what was there) and closes it. */
int files_commit(int fd, const char *path);

/* A directory's entries (regular files, sorted by name; malloc'ed names) and their bytes. */
int files_list(const char *dir, char ***names, size_t *n, uint64_t *bytes);
/* An output directory: built under a temporary name beside out, then renamed to it (out must
 * not exist, or be empty). */
int files_dir_begin(const char *out);
int files_dir_create(const char *name);             /* a file in it: fd, or -1 */
int files_dir_done(int fd, const char *name);      /* that file complete: closed */
int files_dir_copy(const char *src, const char *name); /* a copy of src in it */
int files_dir_commit(const char *out);

/* Removes whatever temporary output exists (at an error or a signal: async-signal-safe). */
void files_cleanup(void);

#endif
