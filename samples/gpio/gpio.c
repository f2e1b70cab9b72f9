/*
 * A GPIO bank as a vfio-user PCI device: the smallest complete device on
 * umdev's public API, built from the installed headers and library with
 * pkg-config (samples/Makefile). BAR0 holds four 8-bit registers:
 *
 *   0 DATA_OUT  rw  the output pins
 *   1 DATA_IN   r   the input pins: wired back from DATA_OUT, bit-reversed
 *   2 IRQ_EN    rw  raise INTx while IRQ_STAT & IRQ_EN
 *   3 IRQ_STAT  rw1c input pins that changed since last cleared
 *
 * Usage: umdev-sample-gpio SOCKET   (serves until SIGTERM or SIGINT)
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <umdev/pci.h>
#include <umdev/profile.h>

enum { DATA_OUT, DATA_IN, IRQ_EN, IRQ_STAT, NR_REGS };

struct gpio {
    struct umdev_dev *dev;
    struct umdev_pci *pci;
    uint8_t out, irq_en, irq_stat;
};

static uint8_t
reverse(uint8_t b)
{
    b = (uint8_t)((b & 0xf0) >> 4 | (b & 0x0f) << 4);
    b = (uint8_t)((b & 0xcc) >> 2 | (b & 0x33) << 2);
    return (uint8_t)((b & 0xaa) >> 1 | (b & 0x55) << 1);
}

/* The line is a function of the registers: recompute after each change. */
static void
update_irq(struct gpio *g)
{
    umdev_pci_intx_set(g->pci, (g->irq_stat & g->irq_en) != 0);
}

static ssize_t
bar0_access(void *opaque, uint64_t off, void *buf, size_t count, bool is_write)
{
    struct gpio *g = opaque;
    uint8_t *v = buf;

    /* The profile admits only single-byte accesses inside BAR0. */
    if (!is_write) {
        *v = off == DATA_OUT  ? g->out
             : off == DATA_IN ? reverse(g->out)
             : off == IRQ_EN  ? g->irq_en
                              : g->irq_stat;
        return (ssize_t)count;
    }
    if (off == DATA_OUT) {
        g->irq_stat |= reverse(g->out ^ *v); /* the inputs that changed */
        g->out = *v;
    } else if (off == IRQ_EN) {
        g->irq_en = *v;
    } else if (off == IRQ_STAT) {
        g->irq_stat &= (uint8_t) ~*v;
    }
    update_irq(g);
    return (ssize_t)count;
}

static int
gpio_reset(void *opaque)
{
    struct gpio *g = opaque;

    g->out = g->irq_en = g->irq_stat = 0;
    umdev_pci_reset(g->pci);
    update_irq(g);
    return 0;
}

static const struct umdev_profile_reg regs[] = {
    { "DATA_OUT", DATA_OUT, 1, UMDEV_W(1), UMDEV_PROFILE_RW, true, false,
      "the output pins the guest drives" },
    { "DATA_IN", DATA_IN, 1, UMDEV_W(1), UMDEV_PROFILE_R, true, true,
      "the input pins the guest samples" },
    { "IRQ_EN", IRQ_EN, 1, UMDEV_W(1), UMDEV_PROFILE_RW, false, false,
      "which input changes interrupt" },
    { "IRQ_STAT", IRQ_STAT, 1, UMDEV_W(1), UMDEV_PROFILE_RW, false, true,
      "input changes, write 1 to clear" },
};
static const struct umdev_profile_region profile_regions[] = {
    { .index = UMDEV_PCI_BAR0_REGION, .regs = regs, .nregs = NR_REGS },
};
static const struct umdev_profile profile = {
    .type = "sample-gpio",
    .regions = profile_regions,
    .nregions = 1,
    .data_path = UMDEV_PROFILE_DP_PIO,
    .max_msgs_per_io = 1,
    .data_path_unit = "pin update",
    .data_path_note = "a GPIO bank is a register: one access per update",
};

static int
gpio_build(struct gpio *g, const struct umdev_logger *log)
{
    static const struct umdev_dev_ops ops = { .reset = gpio_reset };
    const struct umdev_dev_info info = {
        .name = "gpio",
        .pci = true,
        .ops = &ops,
        .opaque = g,
        .log = log,
    };
    const struct umdev_pci_id id = {
        .vendor_id = 0x1234,
        .device_id = 0x11f1, /* samples/README.md */
        .subsystem_vendor_id = 0x1234,
        .subsystem_id = 0x0001,
        .class_code = 0x088000,
        .interrupt_pin = 1,
    };
    const struct umdev_region_desc bar = {
        .size = 16,
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .access = bar0_access,
        .opaque = g,
    };
    int rc;

    rc = umdev_dev_create(&info, &g->dev);
    if (rc == 0)
        rc = umdev_pci_create(g->dev, &id, &g->pci);
    if (rc == 0)
        rc = umdev_pci_bar_add(g->pci, 0, UMDEV_PCI_BAR_MEM32, false, 16, &bar);
    if (rc == 0)
        rc = umdev_dev_set_profile(g->dev, &profile);
    return rc;
}

int
main(int argc, char **argv)
{
    struct umdev_logger log = { .fn = umdev_log_stderr,
                                .max_level = LOG_NOTICE };
    struct gpio g = { .dev = NULL };
    struct umdev_server *srv = NULL;
    struct umdev_loop *loop = NULL;
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
        return 2;
    }
    rc = gpio_build(&g, &log);
    if (rc == 0)
        rc = umdev_loop_create(&loop);
    if (rc == 0)
        rc = umdev_loop_stop_on_signals(loop); /* SIGTERM, SIGINT */
    /* One client, nothing else to watch: wait for its messages in
     * recvmsg() rather than epoll_wait() (SIGRTMIN is the loop's now). */
    if (rc == 0)
        rc = umdev_loop_sleep_in_read(loop, SIGRTMIN);
    if (rc == 0)
        rc = umdev_server_create(g.dev, loop, argv[1], &srv);
    if (rc == 0) {
        printf("gpio: serving 1234:11f1 on %s\n", argv[1]);
        fflush(stdout);
        rc = umdev_loop_run(loop);
    }
    if (rc < 0)
        fprintf(stderr, "gpio: %s\n", strerror(-rc));
    umdev_server_destroy(srv);
    umdev_pci_destroy(g.pci);
    umdev_dev_destroy(g.dev);
    umdev_loop_destroy(loop);
    return rc < 0 ? 1 : 0;
}
