/* The minimal responder: what one core can answer on this machine when answering costs
 * nothing. Not a DNS server: it takes each UDP datagram on 127.0.0.1:PORT, skips the
 * question's name, and sends back the question with one answer, "<qname> 60 IN A
 * 192.0.2.1" (the name a pointer to the question), QR and AA set, RD copied, the OPT
 * record dropped. No geo, no NXDOMAIN, no EDNS: the floor under any real server's cost.
 *
 *   responder PORT [mmsg|simple]
 *
 * mmsg (default): up to 64 datagrams per recvmmsg and one sendmmsg for the answers, as
 * gdnsd, Knot and switchyard batch. simple: one recvfrom and one sendto per query.
 * One thread (pin it with taskset); exits on SIGTERM or SIGINT.
 * Build: cc -O2 -o responder responder.c */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BATCH = 64, MTU = 1500 };

static volatile sig_atomic_t stopping;
static void on_signal(int sig) { (void)sig; stopping = 1; }

/* name (pointer to offset 12), type A, class IN, TTL 60, 4 bytes of address */
static const unsigned char answer_rr[16] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1};

/* Turns the query in buf (len bytes) into the answer, in place. Returns the answer's
 * length, or 0 if the datagram is not a one-question query with an uncompressed name. */
static size_t answer(unsigned char *buf, size_t len) {
    if (len < 12 || buf[4] != 0 || buf[5] != 1) return 0;
    size_t at = 12;
    while (at < len && buf[at] != 0) {
        if (buf[at] & 0xc0) return 0;
        at += 1 + buf[at];
    }
    at += 5; /* the root label, QTYPE, QCLASS */
    if (at > len || at + sizeof answer_rr > MTU) return 0;
    buf[2] = 0x84 | (buf[2] & 0x01); /* QR, opcode 0, AA, RD as asked */
    buf[3] = 0;                      /* RA clear, RCODE NOERROR */
    buf[6] = 0, buf[7] = 1;          /* ANCOUNT */
    memset(buf + 8, 0, 4);           /* NSCOUNT, ARCOUNT */
    memcpy(buf + at, answer_rr, sizeof answer_rr);
    return at + sizeof answer_rr;
}

static unsigned long long serve_simple(int fd) {
    static unsigned char buf[MTU];
    unsigned long long answered = 0;
    while (!stopping) {
        struct sockaddr_in from;
        socklen_t fromlen = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fromlen);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("recvfrom");
            break;
        }
        size_t out = answer(buf, (size_t)n);
        if (out && sendto(fd, buf, out, 0, (struct sockaddr *)&from, fromlen) >= 0) answered++;
    }
    return answered;
}

static unsigned long long serve_mmsg(int fd) {
    static unsigned char bufs[BATCH][MTU];
    static struct sockaddr_in peers[BATCH];
    static struct iovec iovs[BATCH];
    static struct mmsghdr msgs[BATCH];
    unsigned long long answered = 0;
    while (!stopping) {
        for (int i = 0; i < BATCH; i++) {
            iovs[i] = (struct iovec){.iov_base = bufs[i], .iov_len = MTU};
            msgs[i].msg_hdr = (struct msghdr){
                .msg_name = &peers[i], .msg_namelen = sizeof peers[i], .msg_iov = &iovs[i], .msg_iovlen = 1};
        }
        int got = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
        if (got < 0) {
            if (errno == EINTR) continue;
            perror("recvmmsg");
            break;
        }
        /* Keep the datagrams that get an answer, in order, at the front. */
        int ready = 0;
        for (int i = 0; i < got; i++) {
            size_t out = answer(bufs[i], msgs[i].msg_len);
            if (!out) continue;
            iovs[i].iov_len = out;
            msgs[ready++] = msgs[i];
        }
        for (int done = 0; done < ready;) {
            int sent = sendmmsg(fd, msgs + done, (unsigned)(ready - done), 0);
            if (sent < 0) {
                if (errno == EINTR) continue;
                perror("sendmmsg");
                break;
            }
            done += sent;
        }
        answered += (unsigned long long)ready;
    }
    return answered;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s PORT [mmsg|simple]\n", argv[0]);
        return 2;
    }
    int simple = argc == 3 && strcmp(argv[2], "simple") == 0;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        perror("socket");
        return 1;
    }
    int bytes = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1]))};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        perror("bind");
        return 1;
    }
    /* No SA_RESTART: a signal interrupts the blocking receive, and the loop sees `stopping`. */
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    fprintf(stderr, "responder: 127.0.0.1:%s, %s\n", argv[1], simple ? "recvfrom/sendto" : "recvmmsg/sendmmsg");
    unsigned long long answered = simple ? serve_simple(fd) : serve_mmsg(fd);
    fprintf(stderr, "responder: %llu answers\n", answered);
    close(fd);
    return 0;
}
