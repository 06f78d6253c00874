/* libFuzzer: config_load (daemon/config.c, with policy.c) on arbitrary file
 * contents. The input is written to a memfd and loaded through its
 * /proc/self/fd path. Properties checked:
 *  - an error is "PATH:LINE: what" or "PATH: what", never empty;
 *  - an accepted configuration has every value within its documented range,
 *    at least one outcome, and policies with steps and priorities. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "telecared.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
			        #cond);                                              \
			abort();                                                     \
		}                                                                    \
	} while (0)

static int fd = -1;
static char path[64];

static void check_config(const struct config *c)
{
	CHECK(c->file && strcmp(c->file, path) == 0);
	CHECK(c->mqtt.host && c->mqtt.host[0]);
	CHECK(c->mqtt.port >= 1 && c->mqtt.port <= 65535);
	CHECK(c->mqtt.client_id && c->mqtt.client_id[0]);
	CHECK(c->mqtt.prefix && c->mqtt.prefix[0] && !strpbrk(c->mqtt.prefix, "+#"));
	CHECK(c->mqtt.keepalive >= 5 && c->mqtt.keepalive <= 3600);
	CHECK(c->mqtt.max_payload >= 256 && c->mqtt.max_payload <= 1024 * 1024);
	CHECK((c->mqtt.certfile == NULL) == (c->mqtt.keyfile == NULL));
	CHECK(c->store_path && c->store_path[0]);
	CHECK(c->socket_path && c->socket_path[0] && strlen(c->socket_path) < 108);
	CHECK(c->unknown_devices == UNKNOWN_ALARM || c->unknown_devices == UNKNOWN_LOG);
	for (int t = 0; t < TC_T__COUNT; t++) {
		enum tc_kind k = tc_type_kind((enum tc_type)t);
		if (k == TC_KIND_ALARM || k == TC_KIND_TECHNICAL)
			CHECK(c->priority[t] >= 1 && c->priority[t] <= 9);
		else
			CHECK(c->priority[t] == 0);
	}
	CHECK(c->n_outcomes >= 1);
	for (size_t i = 0; i < c->n_outcomes; i++) {
		CHECK(c->outcomes[i] && tc_device_id_valid(c->outcomes[i], strlen(c->outcomes[i])));
		CHECK(config_outcome_valid(c, c->outcomes[i]));
	}
	unsigned seen = 0;
	for (size_t i = 0; i < c->n_policies; i++) {
		const struct policy *p = c->policies[i];
		CHECK(p->name && tc_device_id_valid(p->name, strlen(p->name)));
		CHECK(p->priorities != 0 && (p->priorities & ~0x3feu) == 0);
		CHECK((seen & p->priorities) == 0);   /* a priority has one policy */
		seen |= p->priorities;
		CHECK(p->n_steps >= 1);
		for (int s = 0; s < p->n_steps; s++) {
			CHECK(p->steps[s].n_targets >= 1);
			CHECK(p->steps[s].wait_ms >= 100);
		}
		CHECK(p->repeat >= 0);
		CHECK(p->ack_timeout_ms >= 1000);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 16384)
		return 0;
	if (fd < 0) {
		fd = memfd_create("fuzz.conf", MFD_CLOEXEC);
		if (fd < 0) {
			perror("memfd_create");
			abort();
		}
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size) {
		perror("memfd write");
		abort();
	}

	char err[512];
	err[0] = '\0';
	struct config *c = config_load(path, err, sizeof(err));
	if (!c) {
		size_t n = strlen(path);
		CHECK(strncmp(err, path, n) == 0 && err[n] == ':');
		CHECK(strlen(err) > n + 2);
		if (err[n + 1] >= '0' && err[n + 1] <= '9') {
			/* "PATH:LINE: what": a line that exists */
			long line = strtol(err + n + 1, NULL, 10);
			long lines = 1;
			for (size_t i = 0; i < size; i++)
				lines += data[i] == '\n';
			CHECK(line >= 1);
			/* inih cuts lines longer than its buffer (200 bytes) in two, so a
			 * line number past the end is possible; see tests/unit/test_config.c
			 * test_long_lines. Not checked here to keep the fuzzer on new ground. */
			(void)lines;
		}
		return 0;
	}
	check_config(c);
	config_free(c);
	return 0;
}
