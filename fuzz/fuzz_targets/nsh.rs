//! NSH view, TLV walk and steering header on any bytes: never panics, TLVs stay inside
//! the context area, and a parsed `SteeringRepr` re-emits to a header that parses back
//! to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steerd::wire::nsh::{Packet, STEERING_HEADER_LEN, SteeringRepr, TAG_INPUT_MAX};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Packet::new_checked(data) else {
        return;
    };
    assert!(p.header_len() >= 8 && p.header_len() <= data.len());
    assert_eq!(p.context().len() + 8 + p.payload().len(), data.len());
    let mut walked = 0;
    for tlv in p.tlvs() {
        let Ok(tlv) = tlv else { break };
        walked += 4 + tlv.value.len().next_multiple_of(4);
        assert!(walked <= p.context().len(), "TLVs overran the context area");
    }
    let Ok(repr) = SteeringRepr::parse(&p) else {
        return;
    };
    let mut buf = [0u8; STEERING_HEADER_LEN];
    repr.emit(&mut buf).expect("32-byte buffer");
    assert_eq!(buf, repr.to_bytes());
    let again = SteeringRepr::parse(&Packet::new_checked(&buf[..]).expect("emitted header checks"))
        .expect("emitted header parses");
    // emit normalises: TTL is 6 bits and SPI 24 bits, both already so after parse
    assert_eq!(again, repr);
    let mut out = [0u8; TAG_INPUT_MAX];
    let src = data.get(..4).unwrap_or(&[0; 4]);
    assert_eq!(repr.tag_input(src, src, &mut out), Ok(26));
});
