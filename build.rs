//! Build script. Without the `dpdk` feature it does nothing (no pkg-config, no C
//! compiler, no DPDK needed). With it: asks `pkg-config libdpdk` for DPDK's flags, runs
//! bindgen over src/port/dpdk/wrapper.h and compiles the C shim (src/port/dpdk/shim.c)
//! for DPDK's static-inline fast-path calls. DPDK's cflags carry `-include rte_config.h
//! -march=corei7`: they go to both bindgen (clang) and the C compiler.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "dpdk")]
    dpdk::build();
}

#[cfg(feature = "dpdk")]
mod dpdk {
    use std::path::PathBuf;
    use std::process::Command;

    const HINT: &str = "the dpdk feature needs DPDK 22.11's development files and clang: \
        apt-get install libdpdk-dev clang libclang-dev pkg-config";

    fn pkg_config(arg: &str) -> Vec<String> {
        let out = Command::new("pkg-config")
            .args([arg, "libdpdk"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run pkg-config ({e}); {HINT}"));
        if !out.status.success() {
            panic!(
                "pkg-config finds no libdpdk ({}); {HINT}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        // Flags are whitespace-separated; `-include rte_config.h` is two words that must
        // stay together and in order, which a plain split keeps.
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    pub fn build() {
        println!("cargo:rerun-if-changed=src/port/dpdk/shim.c");
        println!("cargo:rerun-if-changed=src/port/dpdk/shim.h");
        println!("cargo:rerun-if-changed=src/port/dpdk/wrapper.h");
        println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
        println!("cargo:rerun-if-env-changed=PKG_CONFIG_LIBDIR");
        let cflags = pkg_config("--cflags");
        let libs = pkg_config("--libs");

        let mut cc = cc::Build::new();
        cc.file("src/port/dpdk/shim.c").opt_level(3).warnings(true);
        for f in &cflags {
            cc.flag(f);
        }
        cc.compile("steerd_dpdk_shim");

        for l in &libs {
            if let Some(p) = l.strip_prefix("-L") {
                println!("cargo:rustc-link-search=native={p}");
            } else if let Some(n) = l.strip_prefix("-l") {
                println!("cargo:rustc-link-lib=dylib={n}");
            } else if let Some(a) = l.strip_prefix("-Wl,") {
                println!("cargo:rustc-link-arg=-Wl,{a}");
            }
        }

        let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
        let b = bindgen::Builder::default()
            .header("src/port/dpdk/wrapper.h")
            .clang_args(cflags.iter())
            .clang_arg("-Isrc/port/dpdk")
            .allowlist_function("rte_eal_init|rte_eal_cleanup|rte_strerror|rte_thread_register|rte_thread_unregister|rte_socket_id|rte_lcore_count")
            .allowlist_function("rte_eth_dev_count_avail|rte_eth_dev_configure|rte_eth_dev_info_get|rte_eth_dev_socket_id|rte_eth_rx_queue_setup|rte_eth_tx_queue_setup|rte_eth_dev_start|rte_eth_dev_stop|rte_eth_dev_close|rte_eth_promiscuous_enable|rte_eth_macaddr_get|rte_eth_stats_get|rte_eth_xstats_get|rte_eth_xstats_get_names|rte_eth_dev_get_name_by_port|rte_eth_find_next_owned_by|rte_eth_dev_get_port_by_name|rte_eth_dev_adjust_nb_rx_tx_desc")
            .allowlist_function("rte_pktmbuf_pool_create|rte_mempool_free|rte_mempool_avail_count|rte_mempool_in_use_count")
            .allowlist_function("steerd_.*")
            .allowlist_var("steerd_.*|RTE_ETH_.*|RTE_MBUF_DEFAULT_BUF_SIZE|RTE_PKTMBUF_HEADROOM|RTE_MAX_ETHPORTS|SOCKET_ID_ANY|RTE_ETH_NAME_MAX_LEN")
            .allowlist_type("rte_mbuf|rte_eth_conf|rte_eth_dev_info|rte_eth_stats|rte_eth_xstat|rte_eth_xstat_name|rte_ether_addr|rte_eth_rxconf|rte_eth_txconf")
            .derive_default(true)
            .layout_tests(true)
            .generate_comments(false)
            .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
            .generate()
            .unwrap_or_else(|e| {
                panic!("bindgen over DPDK's headers failed ({e}); {HINT}")
            });
        b.write_to_file(out.join("dpdk_bindings.rs"))
            .expect("write OUT_DIR/dpdk_bindings.rs");
    }
}
