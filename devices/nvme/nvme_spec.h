/*
 * NVM Express layouts the nvme subdevice implements, by the names of the
 * NVMe Base Specification 2.0 (section numbers beside them): controller
 * registers, queue entries, opcodes, status codes, Identify and log page
 * offsets. Values only: no code.
 */
#ifndef UMDEV_NVME_SPEC_H
#define UMDEV_NVME_SPEC_H

#include <stdint.h>

/* Controller registers, BAR0 (3.1.3). */
#define NVME_REG_CAP 0x00
#define NVME_REG_VS 0x08
#define NVME_REG_INTMS 0x0c
#define NVME_REG_INTMC 0x10
#define NVME_REG_CC 0x14
#define NVME_REG_CSTS 0x1c
#define NVME_REG_NSSR 0x20
#define NVME_REG_AQA 0x24
#define NVME_REG_ASQ 0x28
#define NVME_REG_ACQ 0x30
#define NVME_REG_DBS 0x1000 /* doorbells (3.1.3.x: SQyTDBL, CQyHDBL) */

#define NVME_CAP_MQES_SHIFT 0
#define NVME_CAP_CQR (1ull << 16)
#define NVME_CAP_TO_SHIFT 24
#define NVME_CAP_DSTRD_SHIFT 32
#define NVME_CAP_CSS_NVM (1ull << 37)
#define NVME_CAP_MPSMIN_SHIFT 48
#define NVME_CAP_MPSMAX_SHIFT 52

#define NVME_CC_EN (1u << 0)
#define NVME_CC_CSS(cc) (((cc) >> 4) & 0x7)
#define NVME_CC_MPS(cc) (((cc) >> 7) & 0xf)
#define NVME_CC_AMS(cc) (((cc) >> 11) & 0x7)
#define NVME_CC_SHN(cc) (((cc) >> 14) & 0x3)
#define NVME_CC_IOSQES(cc) (((cc) >> 16) & 0xf)
#define NVME_CC_IOCQES(cc) (((cc) >> 20) & 0xf)
#define NVME_CC_WRITABLE 0x00fffff1u

#define NVME_CSTS_RDY (1u << 0)
#define NVME_CSTS_CFS (1u << 1)
#define NVME_CSTS_SHST_SHIFT 2
#define NVME_CSTS_SHST_MASK (3u << 2)
#define NVME_SHST_NORMAL 0u
#define NVME_SHST_OCCURRING 1u
#define NVME_SHST_COMPLETE 2u

#define NVME_AQA_ASQS(a) ((a)&0xfff)
#define NVME_AQA_ACQS(a) (((a) >> 16) & 0xfff)
#define NVME_AQA_WRITABLE 0x0fff0fffu

/* Queue entries (4.2, 4.6). */
#define NVME_SQE_SIZE 64u
#define NVME_CQE_SIZE 16u
#define NVME_SQES_LOG2 6u
#define NVME_CQES_LOG2 4u

/* Admin opcodes (5). */
#define NVME_ADM_DELETE_SQ 0x00
#define NVME_ADM_CREATE_SQ 0x01
#define NVME_ADM_GET_LOG_PAGE 0x02
#define NVME_ADM_DELETE_CQ 0x04
#define NVME_ADM_CREATE_CQ 0x05
#define NVME_ADM_IDENTIFY 0x06
#define NVME_ADM_ABORT 0x08
#define NVME_ADM_SET_FEATURES 0x09
#define NVME_ADM_GET_FEATURES 0x0a
#define NVME_ADM_ASYNC_EVENT 0x0c
#define NVME_ADM_DBBUF_CONFIG 0x7c

/* NVM command set I/O opcodes (NVM Command Set Specification 3). */
#define NVME_CMD_FLUSH 0x00
#define NVME_CMD_WRITE 0x01
#define NVME_CMD_READ 0x02
#define NVME_CMD_WRITE_ZEROES 0x08
#define NVME_CMD_DSM 0x09

/* Status Code Types and codes (4.6.1.2). */
#define NVME_SCT_GENERIC 0x0
#define NVME_SCT_CMD_SPECIFIC 0x1
#define NVME_SCT_MEDIA 0x2
/* A status as carried here: SCT in bits 10:8, SC in 7:0 (the CQE's
 * Status Field without the phase tag), DNR in bit 14. */
#define NVME_STATUS(sct, sc) ((uint16_t)(((sct) << 8) | (sc)))
#define NVME_DNR 0x4000u

#define NVME_SC_SUCCESS NVME_STATUS(0, 0x00)
#define NVME_SC_INVALID_OPCODE NVME_STATUS(0, 0x01)
#define NVME_SC_INVALID_FIELD NVME_STATUS(0, 0x02)
#define NVME_SC_CID_CONFLICT NVME_STATUS(0, 0x03)
#define NVME_SC_DATA_XFER_ERROR NVME_STATUS(0, 0x04)
#define NVME_SC_INTERNAL NVME_STATUS(0, 0x06)
#define NVME_SC_ABORT_REQ NVME_STATUS(0, 0x07)
#define NVME_SC_ABORT_SQ_DELETED NVME_STATUS(0, 0x08)
#define NVME_SC_INVALID_NS NVME_STATUS(0, 0x0b)
#define NVME_SC_CMD_SEQ_ERROR NVME_STATUS(0, 0x0c)
#define NVME_SC_INVALID_SGL_DESC NVME_STATUS(0, 0x0d)
#define NVME_SC_PRP_OFFSET_INVALID NVME_STATUS(0, 0x13)
#define NVME_SC_LBA_RANGE NVME_STATUS(0, 0x80)
#define NVME_SC_CAP_EXCEEDED NVME_STATUS(0, 0x81)

#define NVME_SC_CQ_INVALID NVME_STATUS(1, 0x00)
#define NVME_SC_QID_INVALID NVME_STATUS(1, 0x01)
#define NVME_SC_QUEUE_SIZE NVME_STATUS(1, 0x02)
#define NVME_SC_ABORT_LIMIT NVME_STATUS(1, 0x03)
#define NVME_SC_AER_LIMIT NVME_STATUS(1, 0x05)
#define NVME_SC_INVALID_VECTOR NVME_STATUS(1, 0x08)
#define NVME_SC_INVALID_LOG_PAGE NVME_STATUS(1, 0x09)
#define NVME_SC_INVALID_QUEUE_DELETION NVME_STATUS(1, 0x0c)
#define NVME_SC_FEAT_NOT_SAVEABLE NVME_STATUS(1, 0x0d)
#define NVME_SC_FEAT_NOT_CHANGEABLE NVME_STATUS(1, 0x0e)

#define NVME_SC_WRITE_FAULT NVME_STATUS(2, 0x80)
#define NVME_SC_UNRECOVERED_READ NVME_STATUS(2, 0x81)

/* Identify CNS values (5.17.1). */
#define NVME_CNS_NS 0x00
#define NVME_CNS_CTRL 0x01
#define NVME_CNS_ACTIVE_NS_LIST 0x02
#define NVME_CNS_NS_DESC_LIST 0x03
#define NVME_CNS_CS_NS 0x05   /* I/O Command Set specific namespace */
#define NVME_CNS_CS_CTRL 0x06 /* I/O Command Set specific controller */
#define NVME_CSI_NVM 0x00
#define NVME_IDENTIFY_SIZE 4096u

/* Identify Controller data structure byte offsets (5.17.2.1). */
#define NVME_IDC_VID 0
#define NVME_IDC_SSVID 2
#define NVME_IDC_SN 4
#define NVME_IDC_MN 24
#define NVME_IDC_FR 64
#define NVME_IDC_RAB 72
#define NVME_IDC_IEEE 73
#define NVME_IDC_MDTS 77
#define NVME_IDC_CNTLID 78
#define NVME_IDC_VER 80
#define NVME_IDC_OAES 92
#define NVME_IDC_CNTRLTYPE 111
#define NVME_IDC_OACS 256
#define NVME_IDC_ACL 258
#define NVME_IDC_AERL 259
#define NVME_IDC_FRMW 260
#define NVME_IDC_LPA 261
#define NVME_IDC_ELPE 262
#define NVME_IDC_NPSS 263
#define NVME_IDC_WCTEMP 266
#define NVME_IDC_CCTEMP 268
#define NVME_IDC_SQES 512
#define NVME_IDC_CQES 513
#define NVME_IDC_MAXCMD 514
#define NVME_IDC_NN 516
#define NVME_IDC_ONCS 520
#define NVME_IDC_VWC 525
#define NVME_IDC_SGLS 536
#define NVME_IDC_SUBNQN 768
#define NVME_IDC_PSD0 2048

#define NVME_OACS_DBBUF (1u << 8)
#define NVME_ONCS_DSM (1u << 2)
#define NVME_ONCS_WRITE_ZEROES (1u << 3)
#define NVME_ONCS_SET_FEATURES_SAVE (1u << 4)

/* Identify Namespace data structure byte offsets (NVM Command Set
 * Spec., Identify Namespace). */
#define NVME_IDN_NSZE 0
#define NVME_IDN_NCAP 8
#define NVME_IDN_NUSE 16
#define NVME_IDN_NSFEAT 24
#define NVME_IDN_NLBAF 25
#define NVME_IDN_FLBAS 26
#define NVME_IDN_DLFEAT 33
#define NVME_IDN_NGUID 104
#define NVME_IDN_EUI64 120
#define NVME_IDN_LBAF0 128

/* Namespace Identification Descriptor types (Identify CNS 03h). */
#define NVME_NIDT_EUI64 1
#define NVME_NIDT_NGUID 2
#define NVME_NIDT_UUID 3
#define NVME_NIDT_CSI 4

/* Log pages (5.16.1). */
#define NVME_LOG_ERROR 0x01
#define NVME_LOG_SMART 0x02
#define NVME_LOG_FW_SLOT 0x03
#define NVME_LOG_ERROR_ENTRY_SIZE 64u
#define NVME_LOG_SMART_SIZE 512u
#define NVME_LOG_FW_SLOT_SIZE 512u

/* Feature identifiers (5.27.1). */
#define NVME_FEAT_ARBITRATION 0x01
#define NVME_FEAT_POWER_MGMT 0x02
#define NVME_FEAT_TEMP_THRESH 0x04
#define NVME_FEAT_VOLATILE_WC 0x06
#define NVME_FEAT_NUM_QUEUES 0x07
#define NVME_FEAT_IRQ_COALESCE 0x08
#define NVME_FEAT_IRQ_CONFIG 0x09
#define NVME_FEAT_WRITE_ATOMIC 0x0a
#define NVME_FEAT_ASYNC_EVENT 0x0b

/* Get Features SEL. */
#define NVME_SEL_CURRENT 0
#define NVME_SEL_DEFAULT 1
#define NVME_SEL_SAVED 2
#define NVME_SEL_SUPPORTED 3

/* Asynchronous event types (5.2). */
#define NVME_AER_TYPE_ERROR 0
#define NVME_AER_TYPE_SMART 1
#define NVME_AER_TYPE_NOTICE 2

/* Dataset Management (NVM Command Set Spec. 3.2.3). */
#define NVME_DSM_AD (1u << 2) /* Attribute - Deallocate */
#define NVME_DSM_RANGE_SIZE 16u
#define NVME_DSM_MAX_RANGES 256u

/* Write Zeroes (NVM Command Set Spec. 3.2.8): Deallocate, FUA. */
#define NVME_WZ_DEAC (1u << 25)
#define NVME_RW_FUA (1u << 30)
#define NVME_RW_LR (1u << 31)

#endif /* UMDEV_NVME_SPEC_H */
