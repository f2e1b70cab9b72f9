/*
 * The serial parent device: a two-port 16550A PCI card (WCH CH352 2S
 * identity, which Linux's 8250_pci binds without guest changes) served
 * over vfio-user, each port's host end a UNIX socket or a pty on the
 * embedder's event loop. Guest-visible interface: devices/serial/README.md.
 *
 * Threading: everything runs on the thread that runs @loop.
 */
#ifndef UMDEV_SERIAL_SERIAL_H
#define UMDEV_SERIAL_SERIAL_H

#include <stdbool.h>
#include <sys/types.h>

#include "umdev/dev.h"
#include "umdev/loop.h"
#include "umdev/pci.h"

#define SERIAL_NR_PORTS 2

/* PCI identity (8250_pci: pbn_b0_bt_2_115200, one UART per I/O BAR). */
#define SERIAL_VENDOR_ID 0x4348 /* WCH (Nanjing Qinheng) */
#define SERIAL_DEVICE_ID 0x3253 /* CH352 2S */
#define SERIAL_SUBSYS_VENDOR_ID SERIAL_VENDOR_ID
#define SERIAL_SUBSYS_ID SERIAL_DEVICE_ID
#define SERIAL_REVISION 0x10
#define SERIAL_CLASS 0x070002 /* serial controller, 16550-compatible */
#define SERIAL_BAR_SIZE 8     /* per port: an 8-byte I/O BAR */

/* Migration (README.md "Migration"): the state format's version, and the
 * most bytes per port a save drains from the host end into the state
 * (what the host peer sent that the UART had not received). */
#define SERIAL_MIG_VERSION 1u
#define SERIAL_MIG_IN_MAX (64u << 10)

struct serial_port_config {
    /* The UNIX socket (listening, one client at a time) a user connects
     * to with socat or screen; NULL: none. Borrowed during
     * serial_create(). With @pty, a symbolic link to the pty's slave is
     * made at @path instead. */
    const char *path;
    /* Use a pseudo-terminal as the host end instead of a socket. */
    bool pty;
    /* @path lies in a directory the owner below may change (a path a
     * user chose): a root process creates the socket or link there with
     * the owner's filesystem identity, so that it never resolves a path
     * the owner controls with root's rights. Otherwise the directory is
     * the caller's alone and root creates the file, then hands it over
     * without following links. */
    bool owner_creates;
};

struct serial_config {
    const char *name; /* for logs; NULL: "serial" */
    struct serial_port_config port[SERIAL_NR_PORTS];
    /* Who the host ends belong to when the process runs as root (with
     * @set_owner; otherwise they stay the process's). */
    bool set_owner;
    uid_t uid;
    gid_t gid;
    /* The card is built to take a handover (umdev_server_handover_
     * restore()): the host ends another process serves at the ports'
     * paths come with the package, so none is created, and no path is
     * touched, until they do (README.md "Handover"). */
    bool restoring;
};

struct serial;

/**
 * serial_create() - build the device: PCI personality, the two I/O BARs,
 * INTx, the host ends (listening on @loop right away) and the RX timeout
 * timers.
 * @loop: borrowed; must outlive the device.
 * @log: borrowed; may be NULL.
 * With @cfg->restoring, the host ends are left for the handover.
 * Return: 0; -ENOMEM; -EEXIST (a host-end path exists and is not a
 * socket or our symlink); -ENAMETOOLONG; -EACCES (the owner may not
 * create a host end where @owner_creates says it must); or the
 * socket/pty/timerfd error.
 */
int serial_create(struct umdev_loop *loop, const struct serial_config *cfg,
                  const struct umdev_logger *log, struct serial **out);

/** Stop serving the host ends, remove their paths, free. NULL is ok. */
void serial_destroy(struct serial *s);

/**
 * serial_power_cycle() - for harnesses that run one card through many
 * independent clients (fuzz/serial_bar.c): back to what serial_create()
 * left, keeping its host-end sockets and timers. Host clients are
 * dropped (the connected one and any waiting to be accepted), each UART
 * returns to power-on state, which a reset does not quite give: a reset
 * keeps the bytes the UART handed to the host end, and a new card has
 * none; then the card resets as for VFIO_USER_DEVICE_RESET. Call it with
 * no vfio-user client attached. A pty host end stays attached, with
 * whatever the pty holds (harnesses use socket host ends).
 */
void serial_power_cycle(struct serial *s);

/** The device to serve (umdev_server_create()); owned by @s. */
struct umdev_dev *serial_dev(struct serial *s);

/** Its lib/pci config space (for audits); owned by @s. */
struct umdev_pci *serial_pci(struct serial *s);

/**
 * serial_port_host_end() - where port @port's host end is: the socket
 * path, or the pty slave's name (for example /dev/pts/3); NULL if the
 * port has none. Owned by @s.
 */
const char *serial_port_host_end(struct serial *s, unsigned int port);

/** True if port @port's host end is a pty. */
bool serial_port_is_pty(struct serial *s, unsigned int port);

/* The serial parent (parent.c): pool "ports", type "serial-2port". */
struct umdev_parent;
extern const struct umdev_parent serial_parent;

#endif /* UMDEV_SERIAL_SERIAL_H */
