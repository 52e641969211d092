/* The zero-delay load client: asks for one chat-completions stream at a time, --repeat times,
 * and only counts bytes, in 1 MiB reads, until the stream's "data: [DONE]". So the client's
 * speed is not what a zero-delay figure measures (bench/zero.py compiles and runs it).
 *
 *   zeroclient PORT MODEL REPEAT
 *
 * prints one JSON object: bytes per stream, each stream's seconds from its request to [DONE],
 * and the client's own CPU seconds. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUFFER (1 << 20)
static const char DONE[] = "data: [DONE]";

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static double cpu(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: zeroclient PORT MODEL REPEAT\n");
        return 2;
    }
    int port = atoi(argv[1]), repeat = atoi(argv[3]);
    char body[256], request[512];
    int body_len = snprintf(body, sizeof body,
                            "{\"model\": \"%s\", \"messages\": [{\"role\": \"user\", \"content\": \"go\"}], "
                            "\"stream\": true}",
                            argv[2]);
    int request_len = snprintf(request, sizeof request,
                               "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                               body_len, body);
    char *buffer = malloc(BUFFER + sizeof DONE);
    double cpu0 = cpu();
    long long bytes = 0;
    printf("{\"seconds\": [");
    for (int i = 0; i < repeat; i++) {
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
        int sock = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(sock, (struct sockaddr *)&addr, sizeof addr) != 0) {
            perror("connect");
            return 1;
        }
        double start = now();
        if (write(sock, request, request_len) != request_len) {
            perror("write");
            return 1;
        }
        /* the last bytes of the previous read stay in front of the next, so a [DONE] cut
         * between two reads is still found */
        size_t kept = 0;
        int done = 0;
        while (!done) {
            ssize_t got = read(sock, buffer + kept, BUFFER);
            if (got <= 0) break;
            bytes += got;
            size_t have = kept + got;
            buffer[have] = 0;
            done = memmem(buffer, have, DONE, sizeof DONE - 1) != NULL;
            kept = have < sizeof DONE ? have : sizeof DONE - 1;
            memmove(buffer, buffer + have - kept, kept);
        }
        double took = now() - start;
        close(sock);
        if (!done) {
            fprintf(stderr, "stream %d ended without [DONE]\n", i);
            return 1;
        }
        printf("%s%.6f", i ? ", " : "", took);
    }
    printf("], \"bytes\": %lld, \"client_cpu_s\": %.6f}\n", bytes, cpu() - cpu0);
    return 0;
}
