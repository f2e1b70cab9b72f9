/*
 * A program from outside the source tree, built only against what the
 * libumdev-dev package installs (packages.sh builds it with pkg-config
 * and with CMake's find_package(umdev)): a one-register PCI device served
 * on a socket by a child process, and a vfio-user client in the parent
 * that reads its config space IDs and writes and reads back its register.
 * Prints one "outside: ..." line and exits 0 when all of that worked.
 *
 * Usage: outside DIR   (the socket is made in DIR)
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <umdev/client.h>
#include <umdev/dev.h>
#include <umdev/loop.h>
#include <umdev/pci.h>
#include <umdev/umdev.h>

#define VENDOR 0x1234
#define DEVICE 0x11f0

static uint32_t reg;

static ssize_t
bar0_access(void *opaque, uint64_t off, void *buf, size_t count, bool is_write)
{
    (void)opaque;
    if (off != 0 || count != sizeof(reg))
        return -EINVAL;
    if (is_write)
        memcpy(&reg, buf, sizeof(reg));
    else
        memcpy(buf, &reg, sizeof(reg));
    return (ssize_t)count;
}

/* The child: serve the device until SIGTERM; one byte on @ready once the
 * socket listens. Return: the exit status. */
static int
serve(const char *path, int ready)
{
    const struct umdev_dev_info info = { .name = "outside", .pci = true };
    const struct umdev_pci_id id = { .vendor_id = VENDOR,
                                     .device_id = DEVICE,
                                     .class_code = 0xff0000 };
    const struct umdev_region_desc bar = {
        .size = 16,
        .flags = UMDEV_REGION_F_READ | UMDEV_REGION_F_WRITE,
        .access = bar0_access,
    };
    struct umdev_dev *dev = NULL;
    struct umdev_pci *pci = NULL;
    struct umdev_loop *loop = NULL;
    struct umdev_server *srv = NULL;
    int rc;

    rc = umdev_dev_create(&info, &dev);
    if (rc == 0)
        rc = umdev_pci_create(dev, &id, &pci);
    if (rc == 0)
        rc = umdev_pci_bar_add(pci, 0, UMDEV_PCI_BAR_MEM32, false, 16, &bar);
    if (rc == 0)
        rc = umdev_loop_create(&loop);
    if (rc == 0)
        rc = umdev_loop_stop_on_signals(loop);
    if (rc == 0)
        rc = umdev_server_create(dev, loop, path, &srv);
    if (rc == 0 && write(ready, "", 1) != 1)
        rc = -errno;
    close(ready);
    if (rc == 0)
        rc = umdev_loop_run(loop);
    if (rc < 0)
        fprintf(stderr, "outside: server: %s\n", strerror(-rc));
    umdev_server_destroy(srv);
    umdev_pci_destroy(pci);
    umdev_dev_destroy(dev);
    umdev_loop_destroy(loop);
    return rc < 0 ? 1 : 0;
}

/* The parent's checks over vfio-user. Return: 0 or -1 after a message. */
static int
drive(const char *path)
{
    struct umdev_client *c = NULL;
    uint16_t ids[2] = { 0, 0 };
    uint32_t out = 0x5a5aa5a5, in = 0;
    int rc;

    rc = umdev_client_connect(path, NULL, &c);
    if (rc == 0)
        rc = umdev_client_region_read(c, UMDEV_PCI_CONFIG_REGION, 0, ids,
                                      sizeof(ids));
    if (rc == 0)
        rc = umdev_client_region_write(c, UMDEV_PCI_BAR0_REGION, 0, &out,
                                       sizeof(out));
    if (rc == 0)
        rc = umdev_client_region_read(c, UMDEV_PCI_BAR0_REGION, 0, &in,
                                      sizeof(in));
    umdev_client_destroy(c);
    if (rc < 0) {
        fprintf(stderr, "outside: client: %s\n", strerror(-rc));
        return -1;
    }
    if (ids[0] != VENDOR || ids[1] != DEVICE || in != out) {
        fprintf(stderr,
                "outside: read %04x:%04x and BAR0 0x%08x; want "
                "%04x:%04x and 0x%08x\n",
                ids[0], ids[1], in, VENDOR, DEVICE, out);
        return -1;
    }
    printf("outside: libumdev %s served %04x:%04x, BAR0 wrote and read "
           "back 0x%08x\n",
           UMDEV_VERSION_STRING, ids[0], ids[1], in);
    return 0;
}

int
main(int argc, char **argv)
{
    char path[4096], byte;
    int p[2], status = 0, rc;
    pid_t pid;

    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    snprintf(path, sizeof(path), "%s/outside.sock", argv[1]);
    if (pipe(p) < 0 || (pid = fork()) < 0) {
        perror("outside");
        return 1;
    }
    if (pid == 0) {
        close(p[0]);
        _exit(serve(path, p[1]));
    }
    close(p[1]);
    rc = read(p[0], &byte, 1) == 1 ? drive(path) : -1;
    close(p[0]);
    kill(pid, SIGTERM);
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        fprintf(stderr, "outside: the server did not exit cleanly (0x%x)\n",
                status);
        return 1;
    }
    return rc < 0 ? 1 : 0;
}
