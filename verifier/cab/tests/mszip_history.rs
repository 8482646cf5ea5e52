//! MSZIP blocks share deflate's 32 KiB history across block boundaries.
//! gcab (1.5) compresses every block independently, so its cabinets never
//! exercise this; here a hand-assembled fixed-Huffman deflate block copies
//! from the very start of the previous block (distance 32768).

mod common;

use common::{build_blocks, noise};
use vigil_cab::{CabError, read_cabinet};

/// LSB-first bit writer, as deflate packs its bit stream.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u32,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u32, count: u32) {
        for i in 0..count {
            self.acc |= ((value >> i) & 1) << self.n;
            self.n += 1;
            if self.n == 8 {
                self.out.push(self.acc as u8);
                (self.acc, self.n) = (0, 0);
            }
        }
    }
    /// Huffman codes are sent most significant bit first.
    fn code(&mut self, code: u32, len: u32) {
        for i in (0..len).rev() {
            self.put((code >> i) & 1, 1);
        }
    }
    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// A final fixed-Huffman block: 3 matches of 258 and one of 226 bytes, all
/// at distance 32768, i.e. 1000 bytes copied from the previous block.
fn copy_from_previous_block() -> Vec<u8> {
    let mut b = Bits::default();
    b.put(1, 1); // BFINAL
    b.put(1, 2); // BTYPE = fixed Huffman
    let distance_32768 = |b: &mut Bits| {
        b.code(29, 5); // distance code 29: 24577..=32768
        b.put(32768 - 24577, 13);
    };
    for _ in 0..3 {
        b.code(0b1100_0101, 8); // length code 285 = 258
        distance_32768(&mut b);
    }
    b.code(0b1100_0011, 8); // length code 283: 195 + 5 extra bits
    b.put(226 - 195, 5);
    distance_32768(&mut b);
    b.code(0, 7); // end of block (256)
    let mut payload = b"CK".to_vec();
    payload.extend_from_slice(&b.finish());
    payload
}

#[test]
fn mszip_block_may_copy_from_previous_block() {
    let first = noise(32_768, 99);
    let mut block0 = b"CK".to_vec();
    block0.extend_from_slice(&miniz_oxide::deflate::compress_to_vec(&first, 6));
    let blocks = [(block0, 32_768u16), (copy_from_previous_block(), 1000u16)];
    let cab = build_blocks(b"Vendor\\root.cer", &blocks, 1);
    let got = read_cabinet(&cab).unwrap();
    let mut want = first.clone();
    want.extend_from_slice(&first[..1000]);
    assert_eq!(got[0].name, "Vendor/root.cer");
    assert!(got[0].data == want);
}

#[test]
fn back_reference_before_folder_start_is_an_error() {
    // The same copy block as the first block of a folder has no history.
    let cab = build_blocks(b"a", &[(copy_from_previous_block(), 1000)], 1);
    assert!(matches!(
        read_cabinet(&cab),
        Err(CabError::Decompress { block: 0, .. })
    ));
}

#[test]
fn cb_uncomp_must_match_inflated_size() {
    let first = noise(32_768, 5);
    let mut block0 = b"CK".to_vec();
    block0.extend_from_slice(&miniz_oxide::deflate::compress_to_vec(&first, 6));
    for claimed in [999u16, 1001] {
        let blocks = [
            (block0.clone(), 32_768u16),
            (copy_from_previous_block(), claimed),
        ];
        let cab = build_blocks(b"a", &blocks, 1);
        assert!(
            matches!(
                read_cabinet(&cab),
                Err(CabError::Decompress { block: 1, .. })
            ),
            "claimed {claimed}"
        );
    }
}
