/* config.h - gradd's settings: command-line flags, each with a matching
 * GRADD_* environment variable (a flag wins over the environment), their
 * defaults and their validation.
 *
 * Parsing never exits: it returns a status and a message, and main decides
 * (bad value: exit 2). The worker and BLAS thread counts are fitted here to
 * the CPUs this process may use (cpus.h). Nothing here starts threads or
 * touches the network. */
#ifndef GD_SERVER_CONFIG_H
#define GD_SERVER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* What the command line asks for. */
typedef enum gd_action {
    GD_ACT_SERVE = 0,    /* run the server */
    GD_ACT_HELP,         /* --help */
    GD_ACT_VERSION,      /* --version */
    GD_ACT_HEALTHCHECK,  /* --healthcheck: probe a running gradd's /healthz */
} gd_action;

typedef enum gd_log_format { GD_LOG_TEXT = 0, GD_LOG_JSON = 1 } gd_log_format;

#define GD_HOST_MAX 256
#define GD_ORIGIN_MAX 512
#define GD_TOKEN_MAX 4096

typedef struct gd_config {
    gd_action action;
    char host[GD_HOST_MAX];         /* --host, address to listen on */
    int port;                       /* --port, 0: any free port */
    int workers;                    /* --workers, compute threads */
    int blas_threads;               /* --blas-threads, OpenBLAS threads (process-wide) */
    int queue;                      /* --queue, jobs that may wait for a worker */
    int64_t max_body;               /* --max-body, bytes of one request body */
    int64_t max_buffered;           /* --max-buffered, body bytes held across all connections */
    int64_t max_elements;           /* --max-elements, elements of any one tensor */
    int max_nodes;                  /* --max-nodes, nodes of one graph */
    int64_t max_memory;             /* --max-memory, bytes one request's computation may hold */
    int64_t deadline_ms;            /* --deadline-ms, compute deadline (a request may ask for less) */
    int max_connections;            /* --max-connections, open connections at once */
    int conn_timeout_s;             /* --conn-timeout, idle connection timeout in seconds */
    int64_t drain_ms;               /* --drain-ms, keep serving after SIGTERM while readyz is 503 */
    int64_t grace_ms;               /* --grace-ms, then time for in-flight requests to finish */
    char token[GD_TOKEN_MAX + 1];   /* from --token-file; empty: no auth */
    size_t token_len;
    char cors_origin[GD_ORIGIN_MAX];/* --cors-origin; empty: no CORS headers */
    gd_log_format log_format;       /* --log-format */
    int usable_cpus;                /* what cpus.h found, for the startup line */
} gd_config;

/* Fill cfg from the environment (GRADD_*) then argv (flags win), apply the
 * defaults and check every value and their combinations (workers x
 * blas-threads must fit the usable CPUs). Reads the token file.
 * Returns 0, or -1 with a one-line message naming the flag and the value in
 * msg (the caller prints it and exits 2). */
int gd_config_parse(gd_config *cfg, int argc, char **argv, char *msg, size_t msg_size);

/* The --help text (flags, environment variables, defaults) on stdout. */
void gd_config_usage(const char *prog);

#endif
