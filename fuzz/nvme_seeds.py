#!/usr/bin/env python3
"""Writes the seed corpora of the nvme fuzz targets: fuzz/corpus/nvme_cmd
and fuzz/corpus/nvme_bar (their input formats are described at the top
of fuzz/nvme_cmd.c and fuzz/nvme_bar.c). Each seed is a command or a
driver's sequence that is valid, or one field away from valid, so that
fuzzing starts deep in the parser and the controller. Run from anywhere;
it replaces the nvme_* seeds it writes and leaves other files alone."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
PAGE = 4096


def sqe(opcode, cid=1, nsid=0, prp1=0, prp2=0, cdw=(0, 0, 0, 0, 0, 0),
        fuse=0, psdt=0):
    cdw0 = opcode | fuse << 8 | psdt << 14 | cid << 16
    return (struct.pack("<II", cdw0, nsid) + bytes(8) +
            struct.pack("<QQQ", 0, prp1, prp2) + struct.pack("<6I", *cdw))


def write_corpus(name, seeds):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.startswith("seed-"):
            os.unlink(os.path.join(d, f))
    for i, (label, data) in enumerate(seeds):
        with open(os.path.join(d, "seed-%02d-%s" % (i, label)), "wb") as f:
            f.write(data)


# ---- nvme_cmd: cfg, nlba, fault, room, walk length, SQE, memory ranges

def cmd_input(s, mem=(), cfg=0x00 | 7 << 5, nlba=16384, fault=0, room=0,
              walk=0):
    out = bytes([cfg]) + struct.pack("<Q", nlba) + bytes([fault, room])
    out += struct.pack("<I", walk) + s
    for base, content in mem:
        out += struct.pack("<QH", base, len(content)) + content
    return out


def prp_list(entries):
    return b"".join(struct.pack("<Q", e) for e in entries)


def nvme_cmd_seeds():
    G = 0x100000  # guest addresses of the data pages
    L = 0x80000   # a PRP list page
    dsm_ranges = struct.pack("<IIQ", 0, 8, 0) + struct.pack("<IIQ", 0, 0, 99)
    return [
        ("read-1page", cmd_input(sqe(2, nsid=1, prp1=G,
                                     cdw=(0, 0, 7, 0, 0, 0)))),
        ("write-2pages", cmd_input(sqe(1, nsid=1, prp1=G + 0x200,
                                       prp2=G + PAGE,
                                       cdw=(8, 0, 15, 0, 0, 0)))),
        ("read-list", cmd_input(
            sqe(2, nsid=1, prp1=G, prp2=L, cdw=(0, 0, 31, 0, 0, 0)),
            mem=[(L, prp_list([G + PAGE, G + 2 * PAGE, G + 3 * PAGE]))])),
        # A list starting at the last entry of its page: a chain.
        ("read-chain", cmd_input(
            sqe(2, nsid=1, prp1=G, prp2=L + PAGE - 8,
                cdw=(0, 0, 23, 0, 0, 0)),
            mem=[(L + PAGE - 8, prp_list([L + PAGE])),
                 (L + PAGE, prp_list([G + PAGE, G + 2 * PAGE]))])),
        ("read-list-misaligned", cmd_input(
            sqe(2, nsid=1, prp1=G, prp2=L, cdw=(0, 0, 31, 0, 0, 0)),
            mem=[(L, prp_list([G + PAGE, G + 2 * PAGE + 8, 0]))])),
        ("read-list-fault", cmd_input(
            sqe(2, nsid=1, prp1=G, prp2=L, cdw=(0, 0, 31, 0, 0, 0)),
            mem=[(L, prp_list([G + PAGE, G + 2 * PAGE, G + 3 * PAGE]))],
            fault=1)),
        ("read-mdts", cmd_input(sqe(2, nsid=1, prp1=G, prp2=L,
                                    cdw=(0, 0, 2047, 0, 0, 0)),
                                cfg=0)),
        ("write-lba-range", cmd_input(sqe(1, nsid=1, prp1=G,
                                          cdw=(16383, 0, 1, 0, 0, 0)))),
        ("write-zeroes", cmd_input(sqe(8, nsid=1,
                                       cdw=(100, 0, 0xffff | 1 << 25, 0, 0,
                                            0)))),
        ("flush-all", cmd_input(sqe(0, nsid=0xffffffff))),
        ("dsm", cmd_input(sqe(9, nsid=1, prp1=G, cdw=(1, 4, 0, 0, 0, 0)),
                          mem=[(0, dsm_ranges)])),
        ("read-fused", cmd_input(sqe(2, nsid=1, prp1=G, fuse=1))),
        ("read-sgl", cmd_input(sqe(2, nsid=1, prp1=G, psdt=1))),
        ("identify-ctrl", cmd_input(sqe(6, prp1=G, cdw=(1, 0, 0, 0, 0, 0)))),
        ("identify-cs", cmd_input(sqe(6, nsid=1, prp1=G + 0x800,
                                      prp2=G + PAGE,
                                      cdw=(6, 0, 0, 0, 0, 0)))),
        ("get-log-smart", cmd_input(sqe(2, nsid=0xffffffff, prp1=G,
                                        cdw=(2 | 127 << 16, 0, 0, 0, 0,
                                             0)))),
        ("get-log-error-big", cmd_input(sqe(2, prp1=G, prp2=L,
                                            cdw=(1 | 0xffff << 16, 1, 0, 0,
                                                 0, 0)),
                                        mem=[(L, prp_list(
                                            [G + PAGE * i
                                             for i in range(1, 128)]))])),
        ("create-cq", cmd_input(sqe(5, prp1=G, cdw=(1 | 63 << 16,
                                                    1 | 2 | 1 << 16, 0, 0, 0,
                                                    0)))),
        ("create-sq", cmd_input(sqe(1 if False else 0x01, prp1=G,
                                    cdw=(1 | 63 << 16, 1 | 1 << 16, 0, 0, 0,
                                         0)))),
        ("delete-sq", cmd_input(sqe(0, cdw=(1, 0, 0, 0, 0, 0)))),
        ("set-features", cmd_input(sqe(9, cdw=(7, 3 | 3 << 16, 0, 0, 0, 0)))),
        ("get-features-supported", cmd_input(sqe(10, cdw=(7 | 3 << 8, 0, 0,
                                                           0, 0, 0)))),
        ("dbbuf", cmd_input(sqe(0x7c, prp1=G, prp2=G + PAGE))),
        ("walk-alone", cmd_input(sqe(0xff, prp1=G + 4, prp2=L), walk=5 * PAGE,
                                 mem=[(L, prp_list([G + PAGE * i
                                                    for i in range(1, 6)]))])),
        ("walk-top-of-memory", cmd_input(sqe(0xff, prp1=(1 << 64) - PAGE),
                                         walk=2 * PAGE)),
        ("walk-room", cmd_input(sqe(0xff, prp1=G + 4, prp2=L), walk=5 * PAGE,
                                room=2,
                                mem=[(L, prp_list([G + PAGE * i
                                                   for i in range(1, 6)]))])),
    ]


# ---- nvme_bar: byte 0 picks 1, 4 or 8 queue pairs, then ops

(OP_BAR_WR, OP_BAR_RD, OP_CFG_WR, OP_CFG_RD, OP_REGS_WR, OP_REGS_RD, OP_REG,
 OP_DB, OP_ENABLE, OP_CMD, OP_MEM, OP_PTR, OP_POLL, OP_MAP, OP_UNMAP,
 OP_RESET, OP_IRQS, OP_SOCK_RD) = range(18)
IOVA = 0x100000
REG_CC = 5  # index in nvme_bar.c's register table


def gp(page, off=0):
    return IOVA + page * PAGE + off


def op_cmd(q, s):
    return bytes([OP_CMD, q]) + s


def op_mem(off, data):
    assert len(data) < 256
    return (bytes([OP_MEM]) + struct.pack("<I", off)[:3] + bytes([len(data)]) +
            data)


def op_poll(n=1):
    return bytes([OP_POLL, n - 1])


def op_db(idx, v):
    return bytes([OP_DB, idx]) + struct.pack("<H", v)


def op_reg(sel, v, eight=False):
    return bytes([OP_REG, sel, 1 if eight else 0]) + struct.pack(
        "<Q" if eight else "<I", v)


def start(msix=True, layout=0, enable_flags=0):
    out = bytes([OP_MAP, layout])
    if msix is not None:
        out += bytes([OP_IRQS, 1 if msix else 0])
    return out + bytes([OP_ENABLE, enable_flags]) + op_poll()


def create_queues(qs, depth=64):
    out = op_cmd(0, sqe(9, cdw=(7, (len(qs) - 1) * 0x10001, 0, 0, 0, 0)))
    for i, q in enumerate(qs):
        out += op_cmd(0, sqe(5, cid=10 + i, prp1=gp(9 + q),
                             cdw=(q | (depth - 1) << 16, 1 | 2 | q << 16, 0,
                                  0, 0, 0)))
        out += op_cmd(0, sqe(1, cid=20 + i, prp1=gp(1 + q),
                             cdw=(q | (depth - 1) << 16, 1 | q << 16, 0, 0,
                                  0, 0)))
    return out + op_poll(2)


def rw(q, opc, cid, slba, nblocks, prp1, prp2=0, fua=False):
    return op_cmd(q, sqe(opc, cid=cid, nsid=1, prp1=prp1, prp2=prp2,
                         cdw=(slba, 0, (nblocks - 1) | (1 << 30 if fua
                                                        else 0), 0, 0, 0)))


def nvme_bar_seeds():
    ident = op_cmd(0, sqe(6, cid=1, prp1=gp(20), cdw=(1, 0, 0, 0, 0, 0)))
    lists = op_mem(27 * PAGE, prp_list([gp(21), gp(22), gp(23), gp(25)]))
    io = (rw(1, 1, 1, 0, 8, gp(20)) +
          lists + rw(1, 2, 2, 64, 32, gp(20, 0x200), gp(27)) +
          rw(1, 2, 3, 8, 16, gp(20, 0x800), gp(21)) +
          op_cmd(1, sqe(0, cid=4, nsid=1)) +
          op_mem(24 * PAGE, struct.pack("<IIQ", 0, 8, 0) +
                 struct.pack("<IIQ", 0, 16, 100)) +
          op_cmd(1, sqe(9, cid=5, nsid=1, prp1=gp(24), cdw=(1, 4, 0, 0, 0,
                                                             0))) +
          op_cmd(1, sqe(8, cid=6, nsid=1, cdw=(200, 0, 15 | 1 << 25, 0, 0,
                                                0))) +
          op_poll(3) + op_db(3, 6) + op_poll())
    logs = b"".join(
        op_cmd(0, sqe(2, cid=30 + lid, nsid=0xffffffff, prp1=gp(20 + lid),
                      cdw=(lid | 1023 << 16, 0, 0, 0, 0, 0)))
        for lid in (1, 2, 3))
    features = b"".join(
        op_cmd(0, sqe(10, cid=40 + fid, cdw=(fid | sel << 8, 0, 0, 0, 0, 0)))
        for fid, sel in ((1, 0), (4, 1), (6, 0), (7, 0), (8, 3), (9, 0),
                         (11, 2)))
    features += op_cmd(0, sqe(9, cid=60, cdw=(8, 0x0a03, 0, 0, 0, 0)))
    features += op_cmd(0, sqe(9, cid=61, cdw=(9, 1 | 1 << 16, 0, 0, 0, 0)))
    aer = op_cmd(0, sqe(0x0c, cid=70)) + op_cmd(0, sqe(0x0c, cid=71))
    dbbuf = op_cmd(0, sqe(0x7c, cid=80, prp1=gp(18), prp2=gp(19)))
    shadow_tail = op_mem(18 * PAGE + 8, struct.pack("<I", 1))
    return [
        ("enable-identify", bytes([0]) + start() + ident + op_poll(2)),
        ("enable-refused-no-bus-master",
         bytes([0]) + start(enable_flags=1) + ident + op_poll()),
        ("enable-refused-mps", bytes([0]) + start(enable_flags=2) + ident +
         op_poll()),
        ("io-1q", bytes([0]) + start() + create_queues([1]) + io),
        ("io-4q-intx", bytes([1]) + start(msix=False) +
         create_queues([1, 2, 3, 4]) + io + op_db(3, 0) +
         rw(4, 2, 9, 0, 1, gp(25)) + op_poll() + op_db(9, 1)),
        ("io-8q", bytes([2]) + start() +
         create_queues(list(range(1, 9))) + io +
         rw(8, 1, 7, 1000, 256, gp(20), gp(27))),
        ("logs-features-aer", bytes([0]) + start() + logs + features + aer +
         op_poll(2) + op_db(2, 0) + op_poll() + logs + op_poll()),
        ("dbbuf", bytes([0]) + start() + create_queues([1]) + dbbuf +
         op_poll() + rw(1, 2, 1, 0, 8, gp(20)) + shadow_tail + op_poll(3)),
        ("shutdown", bytes([0]) + start() + create_queues([1]) + io +
         op_reg(REG_CC, 1 | 6 << 16 | 4 << 20 | 1 << 14) + op_poll(3) +
         op_reg(REG_CC, 0)),
        ("disable-mid-io", bytes([0]) + start() + create_queues([1]) +
         rw(1, 2, 1, 0, 8, gp(20)) + op_reg(REG_CC, 0) + op_poll()),
        ("cq-in-read-only-half", bytes([0]) + start(layout=1) +
         op_cmd(0, sqe(5, cid=1, prp1=gp(17), cdw=(1 | 63 << 16, 3 | 1 << 16,
                                                   0, 0, 0, 0))) +
         op_cmd(0, sqe(1, cid=2, prp1=gp(2), cdw=(1 | 63 << 16, 1 | 1 << 16,
                                                  0, 0, 0, 0))) +
         op_poll(2) + rw(1, 2, 3, 0, 8, gp(20)) + op_poll(2)),
        ("identify-into-hole", bytes([0]) + start(layout=3) +
         op_cmd(0, sqe(6, cid=1, prp1=gp(15, 0x800), prp2=gp(16),
                       cdw=(1, 0, 0, 0, 0, 0))) + op_poll(2)),
        ("unmap-while-running", bytes([0]) + start() + create_queues([1]) +
         bytes([OP_UNMAP, 0]) + ident + op_poll(2)),
        ("reset-over-socket", bytes([0]) + start() + create_queues([1]) +
         rw(1, 2, 1, 0, 8, gp(20)) + bytes([OP_RESET]) + op_poll() +
         bytes([OP_SOCK_RD])),
        ("bad-doorbells", bytes([0]) + start() + aer + op_poll() +
         op_db(2, 5) + op_db(0, 200) + op_poll(2) + logs + op_poll()),
        # I/O in flight (started, not reaped) holds its buffer's mapping:
        # the unmap must not wait for a poller that is not running.
        ("unmap-during-io", bytes([0]) + start() + create_queues([1]) +
         rw(1, 2, 1, 0, 8, gp(20)) + op_poll() + bytes([OP_UNMAP, 0]) +
         op_poll() + bytes([OP_MAP, 0]) + ident + op_poll()),
        ("create-cq-65536", bytes([0]) + start() +
         op_cmd(0, sqe(5, cid=1, prp1=gp(10), cdw=(1 | 0xffff << 16,
                                                   3 | 1 << 16, 0, 0, 0, 0))) +
         op_cmd(0, sqe(1, cid=2, prp1=gp(2), cdw=(1 | 63 << 16, 1 | 1 << 16,
                                                  0, 0, 0, 0))) +
         op_poll(2) + rw(1, 2, 3, 0, 8, gp(20)) + op_poll(2) + op_db(1, 0) +
         op_poll()),
    ]


if __name__ == "__main__":
    write_corpus("nvme_cmd", nvme_cmd_seeds())
    write_corpus("nvme_bar", nvme_bar_seeds())
