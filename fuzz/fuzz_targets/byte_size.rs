//! Sizes (`--memory 2GiB`, API bodies): a size that parses prints as something that parses to
//! the same size.
#![no_main]
use hostel_core::ByteSize;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &str| {
    if let Ok(size) = input.parse::<ByteSize>() {
        let again: ByteSize = size.to_string().parse().expect("a printed size parses");
        assert_eq!(again, size);
    }
});
