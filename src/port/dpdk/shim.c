/* steerd's C shim: DPDK's fast-path calls are static inline in its headers, so Rust
 * cannot call them through bindgen; these one-line wrappers give them a symbol.
 * Per burst (rx/tx) or per dropped packet (free): the call overhead is per burst. */
#include <stddef.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include "shim.h"

uint16_t steerd_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t steerd_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

void steerd_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

struct rte_mbuf *steerd_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

int steerd_errno(void)
{
	return rte_errno;
}

unsigned steerd_lcore_id(void)
{
	return rte_lcore_id();
}

int steerd_link_up(uint16_t port)
{
	struct rte_eth_link link;
	int rc = rte_eth_link_get_nowait(port, &link);
	if (rc < 0)
		return rc;
	return link.link_status == RTE_ETH_LINK_UP ? 1 : 0;
}

const size_t steerd_mbuf_off_buf_addr = offsetof(struct rte_mbuf, buf_addr);
const size_t steerd_mbuf_off_data_off = offsetof(struct rte_mbuf, data_off);
const size_t steerd_mbuf_off_nb_segs = offsetof(struct rte_mbuf, nb_segs);
const size_t steerd_mbuf_off_port = offsetof(struct rte_mbuf, port);
const size_t steerd_mbuf_off_pkt_len = offsetof(struct rte_mbuf, pkt_len);
const size_t steerd_mbuf_off_data_len = offsetof(struct rte_mbuf, data_len);
const size_t steerd_mbuf_off_buf_len = offsetof(struct rte_mbuf, buf_len);
const size_t steerd_mbuf_size = sizeof(struct rte_mbuf);
