/*
 * The rules the checks judge by, each with its level and what it rests
 * on: a requirement of the vfio-user spec (QEMU
 * docs/interop/vfio-user.rst, cited by section) or of the PCI
 * specifications for config space, or umdev's own stricter policy.
 * README.md carries the same table; `umdev-conform --list-rules` prints
 * this one, and ctest's conformance.rules_doc keeps the two equal.
 *
 * A rule is "spec" only where the spec says the server must; where it
 * says "should", leaves the answer open, or binds the client, the rule is
 * umdev policy and its basis says why.
 */
#include <stdio.h>

#include <json-c/json.h>

#include "conform.h"

#define SPEC CF_LEVEL_SPEC
#define POLICY CF_LEVEL_POLICY

const struct cf_rule cf_rules[CF_NRULES] = {
    [R_PROTO_VERSION_ACCEPT] = {
        .id = "protocol.version.accept",
        .level = SPEC,
        .rule = "VERSION 0.0 with QEMU 11.1.3's capabilities, id 0, gets a "
                "success reply",
        .basis = "vfio-user.rst Connection Initiation: the server replies "
                 "with a compatible version and the capabilities it supports "
                 "(0.0 is the only version the spec defines)",
    },
    [R_PROTO_VERSION_REPLY] = {
        .id = "protocol.version.reply",
        .level = SPEC,
        .rule = "a successful VERSION reply has the proposed major, a minor "
                "not above the proposed one, and only capabilities the client "
                "proposed",
        .basis = "vfio-user.rst VFIO_USER_VERSION: the reply's major must "
                 "equal the proposed one, its minor must not exceed it, its "
                 "capability list must be a subset of those proposed",
    },
    [R_PROTO_VERSION_DATA] = {
        .id = "protocol.version.data",
        .level = SPEC,
        .rule = "the VERSION reply's version data is a JSON object ending "
                "with its NUL at the end of the message, capabilities of the "
                "types the spec gives",
        .basis = "vfio-user.rst VFIO_USER_VERSION Request: version data is "
                 "UTF-8 JSON including its terminating NUL; the Capabilities "
                 "table gives each one's type",
    },
    [R_PROTO_VERSION_PGSIZES] = {
        .id = "protocol.version.pgsizes",
        .level = POLICY,
        .rule = "the VERSION reply's pgsizes includes 4096",
        .basis = "umdev policy (docs/PROTOCOL.md): QEMU maps guest RAM in 4 "
                 "KiB pages; the spec lets a server support other sizes",
    },
    [R_PROTO_VERSION_REFUSE] = {
        .id = "protocol.version.refuse",
        .level = SPEC,
        .rule = "a VERSION the server cannot support (major 1, JSON without "
                "NUL, malformed or over 4096 bytes, pgsizes without 4096) is "
                "answered or the connection closed, never left hanging",
        .basis = "vfio-user.rst Connection Initiation: the server closes the "
                 "connection if it cannot support the advertised version; "
                 "VFIO_USER_VERSION: a server requiring a capability the "
                 "client did not include closes the connection",
    },
    [R_PROTO_VERSION_REFUSAL] = {
        .id = "protocol.version.refusal",
        .level = POLICY,
        .rule = "a VERSION the server cannot support gets an error reply with "
                "the documented errno (ENOTSUP, EINVAL, E2BIG) and the "
                "connection stays open: a good VERSION (0.7) then negotiates, "
                "answered with a minor of at most 7",
        .basis = "umdev policy (docs/PROTOCOL.md, Version negotiation): the "
                 "client learns why; the spec allows closing instead",
    },
    [R_PROTO_VERSION_SECOND] = {
        .id = "protocol.version.second",
        .level = POLICY,
        .rule = "a second VERSION on a negotiated connection gets EINVAL",
        .basis = "umdev policy (docs/PROTOCOL.md); the spec defines VERSION "
                 "as the initial message only",
    },
    [R_PROTO_BEFORE_VERSION] = {
        .id = "protocol.before-version",
        .level = POLICY,
        .rule = "a command before VERSION gets EINVAL and the connection can "
                "still negotiate",
        .basis = "umdev policy (docs/PROTOCOL.md); the spec only says the "
                 "client must send VERSION first",
    },
    [R_PROTO_REPLY_REQUIRED] = {
        .id = "protocol.reply.required",
        .level = SPEC,
        .rule = "every client-to-server command of the spec's table sent "
                "without No_reply (well-formed, short, bad argsz, a stray "
                "descriptor) gets a reply; the server neither hangs nor "
                "closes first",
        .basis = "vfio-user.rst Header: each command message in the Commands "
                 "table must be replied to unless it sets No_reply",
    },
    [R_PROTO_REPLY_FORM] = {
        .id = "protocol.reply.form",
        .level = SPEC,
        .rule = "a reply carries the request's message ID and command and the "
                "Reply type; an error reply carries only the header (no "
                "payload, no descriptors)",
        .basis = "vfio-user.rst Header: the message ID is echoed and the "
                 "command set in the reply; if an error occurs the reply must "
                 "only include the reply header",
    },
    [R_PROTO_COMMAND_CORE] = {
        .id = "protocol.command.core",
        .level = SPEC,
        .rule = "well-formed DMA_MAP without a descriptor, DEVICE_GET_INFO, "
                "GET_REGION_INFO, GET_IRQ_INFO, REGION_READ and REGION_WRITE "
                "succeed",
        .basis = "vfio-user.rst Introduction (there is always an in-band "
                 "message fallback) and Read and Write Operations (these "
                 "operations must be supported)",
    },
    [R_PROTO_REPLY_PAYLOAD] = {
        .id = "protocol.reply.payload",
        .level = SPEC,
        .rule = "a success reply carries its command's structure: "
                "DEVICE_GET_INFO, GET_REGION_INFO and GET_IRQ_INFO theirs with "
                "argsz covering it and the asked index, REGION_READ and "
                "REGION_WRITE the offset, region and count asked (a read with "
                "count data bytes), DMA_UNMAP the original entry",
        .basis = "vfio-user.rst, the Reply section of each command (for "
                 "DMA_UNMAP: the server responds with the original DMA "
                 "entry)",
    },
    [R_PROTO_DMA_OVERLAP] = {
        .id = "protocol.dma.overlap",
        .level = SPEC,
        .rule = "a DMA_MAP over an existing mapping (the same range, or "
                "overlapping either end) fails with EEXIST; unmapping exactly "
                "the mapping then succeeds",
        .basis = "vfio-user.rst VFIO_USER_DMA_MAP: a command to map over an "
                 "existing region must be failed with EEXIST; "
                 "VFIO_USER_DMA_UNMAP: address and size match a previous "
                 "mapping",
    },
    [R_PROTO_COMMAND_OTHER] = {
        .id = "protocol.command.other",
        .level = POLICY,
        .rule = "the other well-formed commands answer as umdev documents: "
                "DMA_UNMAP ALL, GET_REGION_IO_FDS, a SET_IRQS software "
                "trigger, DEVICE_RESET and REGION_WRITE_MULTI succeed; "
                "DEVICE_FEATURE gets ENOTSUP, MIG_DATA_* and DMA_READ/WRITE "
                "sent to the server EINVAL, the retired command 14 ENOSYS",
        .basis = "umdev policy (docs/PROTOCOL.md); the spec makes these "
                 "optional (IO_FDS, write_multiple, reset, migration), leaves "
                 "DMA_UNMAP flags unused, or gives DMA_READ/WRITE the other "
                 "direction",
    },
    [R_PROTO_MALFORMED] = {
        .id = "protocol.malformed",
        .level = POLICY,
        .rule = "each malformed command (short payload, argsz below the fixed "
                "part or past the payload, oversized, stray or surplus "
                "descriptors) gets an error reply with the errno "
                "docs/PROTOCOL.md documents",
        .basis = "umdev policy (docs/PROTOCOL.md, Errors); the spec requires "
                 "a reply, not which error, and a request's argsz below the "
                 "reply's size asks for a truncated reply, not an error",
    },
    [R_PROTO_KEEPS_CONNECTION] = {
        .id = "protocol.keeps-connection",
        .level = POLICY,
        .rule = "after each refused message the connection still answers "
                "DEVICE_GET_INFO with the device's region count",
        .basis = "umdev policy (a bad message gets an error reply and the "
                 "connection stays up); the spec does not say",
    },
    [R_PROTO_UNKNOWN_COMMAND] = {
        .id = "protocol.unknown-command",
        .level = POLICY,
        .rule = "unknown commands (0, 14, 19, 100, 0xffff) get ENOSYS",
        .basis = "umdev policy (docs/PROTOCOL.md); the spec's reply rule "
                 "covers only the commands of its table",
    },
    [R_PROTO_POSTED_SILENT] = {
        .id = "protocol.posted.silent",
        .level = POLICY,
        .rule = "a No_reply command never gets a reply, even a bad or unknown "
                "one, and nothing stray follows",
        .basis = "umdev policy: the spec says No_reply means no reply is "
                 "needed, not that none may come; QEMU does not expect one",
    },
    [R_PROTO_POSTED_ORDER] = {
        .id = "protocol.posted.order",
        .level = SPEC,
        .rule = "a posted config write is applied before the reply to the "
                "next command",
        .basis = "vfio-user.rst Command Concurrency: commands are processed "
                 "in order, so an older No_reply command has been processed "
                 "before the reply to a younger one is sent",
    },
    [R_PROTO_REGION_BOUNDS] = {
        .id = "protocol.region.bounds",
        .level = POLICY,
        .rule = "region accesses at, across or far past the end, wrapping, "
                "with count 0, on absent regions or indices past the last get "
                "EINVAL (EPERM without the region's READ/WRITE flag); a count "
                "over max_data_xfer_size gets E2BIG",
        .basis = "umdev policy (docs/PROTOCOL.md); the spec binds the client "
                 "(count must not exceed the peer's max_data_xfer_size), not "
                 "the server's answer",
    },
    [R_PROTO_BAD_HEADER] = {
        .id = "protocol.bad-header",
        .level = POLICY,
        .rule = "a header with msg_size 8 closes that connection (and only "
                "that one: a new connection then works)",
        .basis = "umdev policy (a bad stream closes its connection); the spec "
                 "does not say",
    },
    [R_PROTO_FDS_CLOSED] = {
        .id = "protocol.fds-closed",
        .level = POLICY,
        .rule = "descriptors on refused messages are closed: the server holds "
                "as many descriptors afterwards as before",
        .basis = "umdev policy; the spec's Security Considerations say "
                 "implementations should guard against denial of service "
                 "(should, not must)",
    },
    [R_CONFIG_ACCESS] = {
        .id = "config.access",
        .level = SPEC,
        .rule = "config space reads are answered with its bytes, and a write "
                "changes no field but its own (everything the check wrote "
                "reads as before once restored)",
        .basis = "PCI Local Bus 3.0 §6.1 (config space; writes to read-only "
                 "registers have no effect); vfio-user.rst Region "
                 "Information (the READ flag allows client reads)",
    },
    [R_CONFIG_WRITE_ACCEPTED] = {
        .id = "config.write-accepted",
        .level = POLICY,
        .rule = "config writes, to read-only bits too, are answered with "
                "success: ignored, not refused",
        .basis = "umdev policy: a real device cannot refuse a config write "
                 "and QEMU reports a refused one; PCI only says the write "
                 "has no effect, the spec does not say",
    },
    [R_CONFIG_HEADER_RO] = {
        .id = "config.header-ro",
        .level = SPEC,
        .rule = "Vendor, Device, Revision, Class, Header Type, Subsystem IDs, "
                "Capabilities Pointer and Interrupt Pin ignore byte, word and "
                "dword writes; the Vendor ID is valid",
        .basis = "PCI Local Bus 3.0 §6.2.1 and §6.2.4 (read-only header "
                 "fields)",
    },
    [R_CONFIG_COMMAND_STATUS] = {
        .id = "config.command-status",
        .level = SPEC,
        .rule = "Command keeps its reserved bits and restores; Status bits "
                "are RW1C (ones never set them, zeros never clear them), "
                "Capabilities List is read-only",
        .basis = "PCI Local Bus 3.0 §6.2.2 (Command), §6.2.3 (Status)",
    },
    [R_CONFIG_INTERRUPT_LINE] = {
        .id = "config.interrupt-line",
        .level = SPEC,
        .rule = "Interrupt Line is writable when there is an interrupt pin",
        .basis = "PCI Local Bus 3.0 §6.2.4 (Interrupt Line is read/write)",
    },
    [R_CONFIG_BAR] = {
        .id = "config.bar",
        .level = SPEC,
        .rule = "BAR sizing keeps the type and prefetchable bits, gives a "
                "contiguous mask, has an upper half for 64-bit BARs, "
                "restores; unimplemented BARs and the ROM BAR read 0 or size "
                "correctly; no reserved memory type",
        .basis = "PCI Local Bus 3.0 §6.2.5 (Base Addresses)",
    },
    [R_CONFIG_BAR_SIZE] = {
        .id = "config.bar-size",
        .level = POLICY,
        .rule = "each BAR decodes exactly its region's size (GET_REGION_INFO)",
        .basis = "umdev policy: config space agrees with the regions; QEMU "
                 "sizes BARs from the region itself and neither spec ties the "
                 "two",
    },
    [R_CONFIG_CAPABILITIES] = {
        .id = "config.capabilities",
        .level = SPEC,
        .rule = "the capability list is in bounds, dword aligned, loop-free, "
                "each ID readable on its own, headers and PM capabilities "
                "read-only; the PCI Express extended list (4 KiB config "
                "space) likewise",
        .basis = "PCI Local Bus 3.0 §6.7 (Capabilities List); PCI PM 1.2 "
                 "§3.2; PCI Express Base (extended capabilities)",
    },
    [R_CONFIG_MSI] = {
        .id = "config.msi",
        .level = SPEC,
        .rule = "MSI control keeps its read-only fields, takes MSI Enable and "
                "a Multiple Message Enable within capable, restores",
        .basis = "PCI Local Bus 3.0 §6.8.1 (MSI capability)",
    },
    [R_CONFIG_MSIX] = {
        .id = "config.msix",
        .level = SPEC,
        .rule = "MSI-X control keeps its read-only fields and takes its "
                "enable bits; Table and PBA offsets are read-only, inside "
                "their BARs and apart",
        .basis = "PCI Local Bus 3.0 §6.8.2 (MSI-X capability)",
    },
    [R_RESET_OFFERED] = {
        .id = "reset.offered",
        .level = POLICY,
        .rule = "DEVICE_GET_INFO sets VFIO_DEVICE_FLAGS_RESET",
        .basis = "umdev policy: every umdev device resets; the spec makes "
                 "reset optional (the flag says whether the device supports "
                 "it)",
    },
    [R_RESET_SUCCEEDS] = {
        .id = "reset.succeeds",
        .level = SPEC,
        .rule = "with VFIO_DEVICE_FLAGS_RESET set, DEVICE_RESET succeeds",
        .basis = "vfio-user.rst VFIO_USER_DEVICE_GET_INFO: the RESET flag "
                 "says the device supports VFIO_USER_DEVICE_RESET",
    },
    [R_RESET_POWER_ON] = {
        .id = "reset.power-on",
        .level = POLICY,
        .rule = "after the inverse of every config dword and writable "
                "register and a DEVICE_RESET, config space and the registers "
                "read as at the first attach (volatile registers excepted)",
        .basis = "umdev policy: reset returns to power-on state; the spec "
                 "does not say what a reset restores",
    },
    [R_RESET_REGISTERS] = {
        .id = "reset.registers",
        .level = POLICY,
        .rule = "every register the profile declares readable answers its "
                "reads, at attach and after the reset",
        .basis = "the type's mediation profile (umdev)",
    },
    [R_DATAPATH_DATA] = {
        .id = "datapath.data",
        .level = POLICY,
        .rule = "the type's load moves its data intact: serial bytes both "
                "ways, testdev DMA inverted with status 0, accel descriptors "
                "completed, nvme commands read back equal, a plug-in's "
                "exercise() all its units",
        .basis = "the device's own contract (devices/*/README.md, "
                 "tests/testdev/testdev.h, the plug-in); the vfio-user spec "
                 "does not define devices",
    },
    [R_DATAPATH_MSGS_PER_IO] = {
        .id = "datapath.msgs-per-io",
        .level = POLICY,
        .rule = "the worst direction's socket messages per unit of I/O stay "
                "within the profile's max_msgs_per_io; accel doorbells are "
                "suppressed while the engine polls",
        .basis = "the type's mediation profile (umdev, docs/CRITERIA.md)",
    },
    [R_DATAPATH_COUNTERS] = {
        .id = "datapath.counters",
        .level = POLICY,
        .rule = "with --daemon-uuid, the worker counted exactly the commands "
                "the client sent",
        .basis = "umdevd's own counters (docs/CONTROL.md)",
    },
    [R_FUZZ_REPLY] = {
        .id = "fuzz.reply",
        .level = SPEC,
        .rule = "every non-posted request of the random stream gets its own "
                "reply (its ID and command) within the timeout; an error "
                "reply carries only the header",
        .basis = "vfio-user.rst Header: each command must be replied to; an "
                 "error reply must only include the header",
    },
    [R_FUZZ_POSTED_SILENT] = {
        .id = "fuzz.posted-silent",
        .level = POLICY,
        .rule = "posted requests of the stream get no reply, and nothing "
                "stray comes",
        .basis = "umdev policy, as protocol.posted.silent",
    },
    [R_FUZZ_PROFILE] = {
        .id = "fuzz.profile",
        .level = POLICY,
        .rule = "with a profile, an access to a non-config region outside the "
                "declared registers and mmap areas (or of an undeclared width "
                "or direction) is refused; the profile's region sizes match "
                "the device",
        .basis = "the type's mediation profile (umdev, docs/CRITERIA.md)",
    },
    [R_FUZZ_IDENTITY] = {
        .id = "fuzz.identity",
        .level = SPEC,
        .rule = "after the run, config 0x00, 0x08 and 0x2c (IDs, revision, "
                "class, subsystem) read as at attach",
        .basis = "PCI Local Bus 3.0 §6.2.1 and §6.2.4 (read-only header "
                 "fields)",
    },
    [R_FUZZ_SURVIVES] = {
        .id = "fuzz.survives",
        .level = POLICY,
        .rule = "the server process outlives the run and the client's "
                "departure; a fresh connection negotiates and DEVICE_GET_INFO "
                "answers",
        .basis = "umdev policy: servers outlive their clients; the spec lets "
                 "a server exit when its client leaves (Client Disconnection)",
    },
    [R_LEAKS_DETACH] = {
        .id = "leaks.detach",
        .level = POLICY,
        .rule = "after attach/detach cycles (half leaving unmapping and IRQ "
                "de-assignment to the detach) the server holds exactly as "
                "many descriptors and mappings as before",
        .basis = "vfio-user.rst Client Disconnection: the server should unmap "
                 "client memory and close the descriptors the client passed "
                 "(should, not must)",
    },
    [R_LEAKS_MEMORY] = {
        .id = "leaks.memory",
        .level = POLICY,
        .rule = "the server's VmRSS settles during warm-up and then grows by "
                "at most 64 KiB over the measured cycles",
        .basis = "umdev policy: no memory leak per client",
    },
};

const char *
cf_level_name(enum cf_level level)
{
    switch (level) {
    case CF_LEVEL_SPEC:
        return "spec";
    case CF_LEVEL_POLICY:
        return "policy";
    default:
        return "error";
    }
}

void
cf_rules_print(bool json)
{
    struct json_object *arr = json ? json_object_new_array() : NULL;
    size_t i;

    /* Text: a Markdown table, the one README.md carries. */
    if (arr == NULL)
        printf("| rule | level | passes when | rests on |\n"
               "|---|---|---|---|\n");
    for (i = 0; i < CF_NRULES; i++) {
        const struct cf_rule *r = &cf_rules[i];

        if (arr != NULL) {
            struct json_object *o = json_object_new_object();

            json_object_object_add(o, "id", json_object_new_string(r->id));
            json_object_object_add(
                o, "level", json_object_new_string(cf_level_name(r->level)));
            json_object_object_add(o, "rule", json_object_new_string(r->rule));
            json_object_object_add(o, "basis",
                                   json_object_new_string(r->basis));
            json_object_array_add(arr, o);
        } else {
            printf("| `%s` | %s | %s | %s |\n", r->id, cf_level_name(r->level),
                   r->rule, r->basis);
        }
    }
    if (arr != NULL) {
        printf("%s\n", json_object_to_json_string_ext(
                           arr, JSON_C_TO_STRING_PRETTY |
                                    JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(arr);
    }
}
