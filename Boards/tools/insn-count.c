// QEMU TCG plugin: counts executed guest instructions, in total and between two marker addresses.
//
//   qemu-system-arm ... -plugin insn-count.so,begin=0xADDR,end=0xADDR[,out=FILE]
//
// Every translated instruction gets an inline 64-bit add on one counter (the boards run one vCPU, so the
// non-atomic add is exact). The first instruction at `begin` snapshots the counter; the first at `end` prints
// "interval N: C" with C the instructions executed since that snapshot (the marker functions' own few
// instructions included, the same in every interval), N counting from 0. Intervals do not nest: a second
// begin before an end restarts the interval. At exit it prints "total: C". Lines go to FILE when given, else
// to QEMU's log (visible with `-d plugin`, or in the file of `-D`). Addresses are compared with the Thumb bit
// cleared, so an odd symbol value from the ELF works as well as an even one.
//
// Built by `make -C Boards count` against qemu-plugin.h of Debian's qemu source package (QEMU 7.2).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

static uint64_t executed;
static uint64_t begin_address, end_address;
static uint64_t interval_start;
static int interval_open;
static unsigned interval_index;
static FILE *out;

static void emit(const char *line) {
    if (out) {
        fputs(line, out);
        fflush(out);
    } else {
        qemu_plugin_outs(line);
    }
}

static void on_begin(unsigned int vcpu, void *data) {
    (void)vcpu;
    (void)data;
    interval_start = executed;
    interval_open = 1;
}

static void on_end(unsigned int vcpu, void *data) {
    (void)vcpu;
    (void)data;
    if (!interval_open) return;
    char line[64];
    snprintf(line, sizeof line, "interval %u: %llu\n", interval_index++,
             (unsigned long long)(executed - interval_start));
    emit(line);
    interval_open = 0;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    size_t count = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < count; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t address = qemu_plugin_insn_vaddr(insn);
        // Whether the snapshot sees a marker's own first instruction is the same for every interval.
        if (address == begin_address)
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_begin, QEMU_PLUGIN_CB_NO_REGS, NULL);
        if (address == end_address)
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_end, QEMU_PLUGIN_CB_NO_REGS, NULL);
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &executed, 1);
    }
}

static void report_total(qemu_plugin_id_t id, void *data) {
    (void)id;
    (void)data;
    char line[64];
    snprintf(line, sizeof line, "total: %llu\n", (unsigned long long)executed);
    emit(line);
    if (out) fclose(out);
    out = NULL;
}

static int parse_address(const char *text, uint64_t *address) {
    char *rest;
    errno = 0;
    unsigned long long value = strtoull(text, &rest, 0);
    if (errno != 0 || rest == text || *rest != '\0') return 0;
    *address = value & ~1ULL;
    return 1;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
    (void)info;
    int have_begin = 0, have_end = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "begin=", 6) == 0) {
            have_begin = parse_address(arg + 6, &begin_address);
            if (!have_begin) goto bad;
        } else if (strncmp(arg, "end=", 4) == 0) {
            have_end = parse_address(arg + 4, &end_address);
            if (!have_end) goto bad;
        } else if (strncmp(arg, "out=", 4) == 0) {
            out = fopen(arg + 4, "w");
            if (!out) {
                fprintf(stderr, "insn-count: cannot write %s: %s\n", arg + 4, strerror(errno));
                return 1;
            }
        } else {
            goto bad;
        }
        continue;
    bad:
        fprintf(stderr, "insn-count: bad argument '%s' (begin=ADDR, end=ADDR, out=FILE)\n", arg);
        return 1;
    }
    if (have_begin != have_end) {
        fprintf(stderr, "insn-count: begin= and end= go together\n");
        return 1;
    }
    if (!have_begin) begin_address = end_address = UINT64_MAX;  // totals only
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, report_total, NULL);
    return 0;
}
