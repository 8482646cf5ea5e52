//! The CFDATA checksum.
//!
//! Algorithm (MS-CAB, as implemented by Microsoft's cabinet.dll, libmspack and
//! gcab): a 32-bit XOR over the input taken as little-endian 32-bit words;
//! the 1-3 trailing bytes are folded into one extra word *big-endian style*
//! (for 3 bytes `b0<<16 | b1<<8 | b2`, for 2 `b0<<8 | b1`, for 1 `b0`).
//! The block checksum is that XOR first over the block's data bytes
//! (`ab[0..cbData]`) with seed 0, then continued over the 4 header bytes
//! `cbData`,`cbUncomp` (little-endian, as stored). The per-block reserve
//! area is not covered (libmspack behaviour). A stored checksum of 0 means
//! "not computed" and cannot be checked.
//!
//! Being a plain XOR, it detects any change confined to one 32-bit word
//! (so every single flipped byte), but not a swap of two aligned words.

/// XOR checksum of `data`, continuing from `seed`.
pub fn checksum(data: &[u8], seed: u32) -> u32 {
    let mut sum = seed;
    let mut words = data.chunks_exact(4);
    for word in &mut words {
        let mut w = [0u8; 4];
        w.copy_from_slice(word);
        sum ^= u32::from_le_bytes(w);
    }
    let tail = words
        .remainder()
        .iter()
        .fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
    sum ^ tail
}

/// The checksum a CFDATA block with these sizes and data must carry.
pub fn cfdata_checksum(cb_data: u16, cb_uncomp: u16, data: &[u8]) -> u32 {
    let [d0, d1] = cb_data.to_le_bytes();
    let [u0, u1] = cb_uncomp.to_le_bytes();
    checksum(&[d0, d1, u0, u1], checksum(data, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_are_xored_little_endian() {
        assert_eq!(checksum(&[1, 0, 0, 0, 0, 1, 0, 0], 0), 0x0000_0101);
        assert_eq!(
            checksum(&[0x78, 0x56, 0x34, 0x12], 0xffff_ffff),
            0xedcb_a987
        );
    }

    #[test]
    fn tail_bytes_fold_big_endian() {
        assert_eq!(checksum(&[0xaa], 0), 0xaa);
        assert_eq!(checksum(&[0xaa, 0xbb], 0), 0xaabb);
        assert_eq!(checksum(&[0xaa, 0xbb, 0xcc], 0), 0x00aa_bbcc);
        assert_eq!(checksum(&[0, 0, 0, 0, 0xaa, 0xbb, 0xcc], 0), 0x00aa_bbcc);
    }

    #[test]
    fn every_single_byte_flip_changes_the_block_checksum() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1001).collect();
        let good = cfdata_checksum(1001, 1001, &data);
        for i in 0..data.len() {
            let mut bad = data.clone();
            bad[i] ^= 0x40;
            assert_ne!(cfdata_checksum(1001, 1001, &bad), good, "flip at {i}");
        }
        assert_ne!(cfdata_checksum(1000, 1001, &data), good);
        assert_ne!(cfdata_checksum(1001, 1000, &data), good);
    }
}
