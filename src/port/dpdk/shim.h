/* steerd's C shim over DPDK's static-inline fast-path calls (see shim.c). */
#ifndef STEERD_DPDK_SHIM_H
#define STEERD_DPDK_SHIM_H
#include <stdint.h>
#include <stddef.h>

struct rte_mbuf;
struct rte_mempool;

uint16_t steerd_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t steerd_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
void steerd_pktmbuf_free(struct rte_mbuf *m);
struct rte_mbuf *steerd_pktmbuf_alloc(struct rte_mempool *mp);
int steerd_errno(void);
unsigned steerd_lcore_id(void);
/* The port's link state without waiting: 1 up, 0 down, < 0 an error (-errno). */
int steerd_link_up(uint16_t port);

/* Offsets of the rte_mbuf fields steerd reads and writes directly (checked in tests
 * against the Rust side, so a layout change cannot go unnoticed). */
extern const size_t steerd_mbuf_off_buf_addr;
extern const size_t steerd_mbuf_off_data_off;
extern const size_t steerd_mbuf_off_nb_segs;
extern const size_t steerd_mbuf_off_port;
extern const size_t steerd_mbuf_off_pkt_len;
extern const size_t steerd_mbuf_off_data_len;
extern const size_t steerd_mbuf_off_buf_len;
extern const size_t steerd_mbuf_size;
#endif
