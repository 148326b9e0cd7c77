/*
 * The C side of bench/ringbuf: drains the ringbench `records` ring buffer from
 * a bpffs pin with plain libbpf (ring_buffer__new + ring_buffer__consume) and
 * reads every field of every record, as the JS consumer does. This is the
 * limit the JS path is compared with.
 *
 *   ringbuf_consumer PIN COUNT RECORD_SIZE FIRST_SEQ [TIMEOUT_MS]
 *
 * Stops after COUNT records (or TIMEOUT_MS, default 20000, without progress)
 * and prints one JSON line on stdout:
 *   {"records":..,"ns":..,"cpu_ns":..,"seq_errors":..,"check_errors":..,
 *    "size_errors":..,"ts_errors":..,"timed_out":false,"error":0}
 * `ns` runs from the first consume call to the last record (setup excluded,
 * as on the JS side); `cpu_ns` is this process's CPU time over the same span.
 *
 * Built by bench/ringbuf.ts: cc -O2 -I bpf bench/ringbuf_consumer.c -lbpf
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "ringbench.h"

struct consumer {
	uint64_t records;
	uint64_t next_seq;
	uint64_t last_ts;
	uint32_t record_size;
	uint64_t seq_errors, check_errors, size_errors, ts_errors;
};

static int on_record(void *ctx, void *data, size_t len)
{
	struct consumer *c = ctx;
	const struct ringbench_record *r = data;
	/* Every field, once, as the JS decoders read them. */
	uint64_t seq = r->seq, ts = r->ts_ns;
	uint32_t size = r->size, check = r->check;

	if (seq != c->next_seq)
		c->seq_errors++;
	c->next_seq = seq + 1;
	if (check != (uint32_t)(seq ^ 0x5eed5eed))
		c->check_errors++;
	if (size != c->record_size || len != c->record_size)
		c->size_errors++;
	if (ts < c->last_ts)
		c->ts_errors++;
	c->last_ts = ts;
	c->records++;
	return 0; /* drain all: records beyond COUNT show up in the output */
}

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t count, size, first_seq, timeout_ms = 20000;
	if (argc < 5 || argc > 6 || parse_u64(argv[2], &count) || parse_u64(argv[3], &size) ||
	    parse_u64(argv[4], &first_seq) || (argc == 6 && parse_u64(argv[5], &timeout_ms)) ||
	    count == 0 || size < sizeof(struct ringbench_record) || size > RINGBENCH_MAX_RECORD) {
		fprintf(stderr, "usage: %s PIN COUNT RECORD_SIZE FIRST_SEQ [TIMEOUT_MS]\n", argv[0]);
		return 2;
	}

	int fd = bpf_obj_get(argv[1]);
	if (fd < 0) {
		fprintf(stderr, "ringbuf_consumer: bpf_obj_get(%s): %s\n", argv[1], strerror(errno));
		return 1;
	}
	struct consumer c = {
		.next_seq = first_seq, .record_size = (uint32_t)size,
	};
	struct ring_buffer *rb = ring_buffer__new(fd, on_record, &c, NULL);
	if (!rb) {
		fprintf(stderr, "ringbuf_consumer: ring_buffer__new: %s\n", strerror(errno));
		close(fd);
		return 1;
	}

	uint64_t t0 = now_ns(CLOCK_MONOTONIC), cpu0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
	uint64_t last_progress = t0, seen = 0;
	int timed_out = 0, err = 0;
	while (c.records < count) {
		int n = ring_buffer__consume(rb);
		if (n < 0) {
			err = n;
			break;
		}
		if (c.records != seen) {
			seen = c.records;
			last_progress = now_ns(CLOCK_MONOTONIC);
			continue;
		}
		/* Nothing new: sleep on the ring's epoll fd instead of spinning. */
		n = ring_buffer__poll(rb, 100);
		if (n < 0 && n != -EINTR) {
			err = n;
			break;
		}
		if (c.records == seen && now_ns(CLOCK_MONOTONIC) - last_progress > timeout_ms * 1000000ull) {
			timed_out = 1;
			break;
		}
	}
	uint64_t t1 = now_ns(CLOCK_MONOTONIC), cpu1 = now_ns(CLOCK_PROCESS_CPUTIME_ID);

	printf("{\"records\":%" PRIu64 ",\"ns\":%" PRIu64 ",\"cpu_ns\":%" PRIu64
	       ",\"seq_errors\":%" PRIu64 ",\"check_errors\":%" PRIu64 ",\"size_errors\":%" PRIu64
	       ",\"ts_errors\":%" PRIu64 ",\"timed_out\":%s,\"error\":%d}\n",
	       c.records, t1 - t0, cpu1 - cpu0, c.seq_errors, c.check_errors, c.size_errors,
	       c.ts_errors, timed_out ? "true" : "false", err);
	ring_buffer__free(rb);
	close(fd);
	return err || timed_out ? 1 : 0;
}
