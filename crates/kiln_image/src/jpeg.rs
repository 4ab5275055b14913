//! Lossless JPEG optimisation with mozjpeg (the libjpeg API, built from C by `mozjpeg-sys`).
//!
//! [`optimize_lossless`] does what `jpegtran -copy none -optimize -progressive` does: the quantised
//! DCT coefficients are read with `jpeg_read_coefficients` and written back unchanged with
//! `jpeg_write_coefficients`, so nothing is decoded or re-encoded and the pixels are bit-exact.
//! Only the entropy coding changes (optimised Huffman tables, a progressive scan script that
//! mozjpeg searches for the smallest output) and the metadata is reduced to what changes how the
//! image looks: an ICC profile and a non-default EXIF orientation.
//!
//! # Why this module uses `unsafe`
//!
//! libjpeg is a C library, so calling it is `unsafe` by nature; kiln keeps `unsafe` out of every
//! other module and this one is the FFI boundary. The unsafe code is confined to:
//! the two owners of libjpeg objects (`Decompressor`, `Compressor`), the C callbacks for errors
//! and output, copying libjpeg's list of saved markers, and the FFI calls themselves in
//! `transcode`. Everything else — marker parsing, EXIF, errors — is safe Rust.
//!
//! # Errors never abort
//!
//! libjpeg's default `error_exit` calls `exit()`. Here it is replaced by a callback that unwinds
//! with the formatted message (`mozjpeg-sys`'s `unwinding` feature builds the C code with
//! `-fexceptions` and declares every function `extern "C-unwind"`, which makes unwinding through
//! the C frames defined behaviour). Warnings (for example "Premature end of JPEG file", which
//! libjpeg reports for truncated data after padding it with a fake EOI) unwind the same way, so a
//! damaged file is an `Err`, never a silently patched image. Every libjpeg call runs inside
//! [`std::panic::catch_unwind`], and the libjpeg objects are destroyed by `Drop` on every path.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_long, c_uint, c_ulong};
use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::{self, NonNull};

use mozjpeg_sys as ffi;

/// Why a JPEG could not be optimised. The text is libjpeg's own message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JpegError {
    /// The input is not a JPEG, or is truncated or corrupt (libjpeg reported an error or a warning).
    #[error("{0}")]
    Corrupt(String),
    /// The input is a JPEG this build cannot rewrite losslessly: 12-bit samples, the lossless or
    /// hierarchical processes, or an image too large for the memory limit.
    #[error("{0}")]
    Unsupported(String),
}

/// The most memory one libjpeg object may use. A transcode holds every DCT coefficient of the
/// image (2 bytes each: 96 MP of 4:4:4 or 190 MP of 4:2:0 colour fit in 1 GiB), so this only
/// stops a tiny file that claims to be, say, 60000×60000 pixels from allocating tens of GiB.
const MAX_MEMORY: c_long = 1 << 30;

const JPEG_APP0: c_int = 0xE0;
const APP1: c_int = JPEG_APP0 + 1;
const APP2: c_int = JPEG_APP0 + 2;
const APP14: c_int = JPEG_APP0 + 14;
/// libjpeg's `JMSG_LENGTH_MAX`: `format_message` writes up to this many bytes.
const JMSG_LENGTH_MAX: usize = 200;
const EXIF_HEADER: &[u8] = b"Exif\0\0";
const ICC_HEADER: &[u8] = b"ICC_PROFILE\0";
const EXIF_ORIENTATION: u16 = 0x0112;

/// Losslessly re-writes a baseline or progressive JPEG: the DCT coefficients are copied unchanged
/// (no decode/re-encode, pixels bit-exact), Huffman tables optimised, progressive scans
/// (`jpeg_simple_progression`), all markers dropped except: an ICC profile (APP2 "ICC_PROFILE"
/// chunks, kept byte for byte and in order) and the EXIF orientation, which is kept as a minimal
/// EXIF APP1 segment holding only the Orientation tag (0x0112) when the input had an orientation
/// other than 1 (so browsers still display it the right way up).
///
/// The JFIF APP0 or Adobe APP14 marker that identifies the colour space is written by libjpeg
/// itself (`jpeg_copy_critical_parameters` → `jpeg_set_colorspace`: JFIF for greyscale and YCbCr,
/// Adobe for RGB, CMYK and YCCK with the right transform code). An Adobe marker is only written if
/// the input had one, because decoders take a marked CMYK file to be inverted (Photoshop style).
/// Data after the EOI marker is dropped, and so are restart markers. Arithmetic-coded input is
/// accepted (the `arith_dec` feature) and comes out Huffman-coded, which browsers can decode.
///
/// The output is usually 2–20% smaller, but can be larger (an already optimised file, or an
/// arithmetic-coded one): the caller keeps whichever it prefers.
///
/// # Errors
///
/// [`JpegError::Corrupt`] with libjpeg's message if the input is not a JPEG, or is truncated or
/// corrupt (libjpeg warnings count); [`JpegError::Unsupported`] for valid JPEGs mozjpeg cannot
/// transcode. The caller should then keep the original bytes.
pub fn optimize_lossless(input: &[u8]) -> Result<Vec<u8>, JpegError> {
    let len = c_ulong::try_from(input.len()).map_err(|_| {
        JpegError::Unsupported(format!("JPEG of {} bytes is too large", input.len()))
    })?;
    catch_libjpeg(|| transcode(input, len))
}

/// The width and height in a JPEG's start-of-frame segment (SOF0-SOF15 but DHT, JPG and DAC),
/// read from the header without decoding.
pub fn dimensions(input: &[u8]) -> Option<(u32, u32)> {
    let (_, sof) = header_segments(input)
        .find(|&(m, _)| (0xC0..=0xCF).contains(&m) && !matches!(m, 0xC4 | 0xC8 | 0xCC))?;
    // Sample precision, then height and width.
    let be = |at: usize| {
        Some(u32::from(u16::from_be_bytes([
            *sof.get(at)?,
            *sof.get(at + 1)?,
        ])))
    };
    Some((be(3)?, be(1)?))
}

/// The EXIF orientation (1..=8) of a JPEG, if it has one: read from the first APP1 "Exif" segment
/// before the image data, and only if the tag is a single SHORT (as browsers require). The tests
/// check the transcoder keeps it with this.
#[cfg(test)]
fn exif_orientation(input: &[u8]) -> Option<u8> {
    let exif = header_segments(input)
        .find(|&(marker, data)| c_int::from(marker) == APP1 && data.starts_with(EXIF_HEADER))?;
    orientation_from_exif(exif.1)
}

/// The libjpeg work of [`optimize_lossless`]; any libjpeg error or warning unwinds out of it.
fn transcode(input: &[u8], len: c_ulong) -> Vec<u8> {
    let mut src = Decompressor::new();
    // SAFETY: `input` is borrowed for this whole function and `src`, which reads from it, is
    // dropped before the function returns; libjpeg reads at most `len` == `input.len()` bytes.
    // The calls follow libjpeg's order: source and marker saving, then header, then coefficients.
    let coefficients = unsafe {
        let cinfo = src.cinfo();
        ffi::jpeg_mem_src(cinfo, input.as_ptr(), len);
        for marker in [APP1, APP2, APP14] {
            ffi::jpeg_save_markers(cinfo, marker, 0xFFFF);
        }
        ffi::jpeg_read_header(cinfo, 1);
        ffi::jpeg_read_coefficients(cinfo)
    };
    let markers = src.saved_markers();
    let orientation = markers
        .iter()
        .find(|(marker, data)| *marker == APP1 && data.starts_with(EXIF_HEADER))
        .and_then(|(_, data)| orientation_from_exif(data))
        .filter(|&orientation| orientation != 1);
    // The same test libjpeg uses to set `saw_Adobe_marker` (which the bindings keep private).
    let had_adobe = markers
        .iter()
        .any(|(marker, data)| *marker == APP14 && data.len() >= 12 && data.starts_with(b"Adobe"));
    let exif = orientation.map(minimal_exif);
    let icc = markers
        .iter()
        .filter(|(marker, data)| *marker == APP2 && data.starts_with(ICC_HEADER));

    // Declared after `src`, so dropped before it: the coefficient arrays belong to `src`.
    let mut dst = Compressor::new();
    // SAFETY: `coefficients` was returned by `jpeg_read_coefficients` on `src`, which is still
    // alive and not finished, so the arrays are valid until `jpeg_finish_decompress` below, after
    // `jpeg_finish_compress`. Marker data pointers and lengths come from live slices (each at most
    // 65533 bytes: saved markers are, and `minimal_exif` is 32 bytes).
    unsafe {
        let cinfo = dst.cinfo();
        ffi::jpeg_copy_critical_parameters(src.cinfo(), cinfo);
        // Redundant with mozjpeg's default profile, but the point of the exercise.
        cinfo.optimize_coding = 1;
        if !had_adobe {
            cinfo.write_Adobe_marker = 0;
        }
        // After `jpeg_copy_critical_parameters`, whose `jpeg_set_colorspace` can change the colour
        // space the default script was made for. mozjpeg's default profile also turns on
        // `optimize_scans`, so this is the search for the smallest progression, not a fixed script.
        ffi::jpeg_simple_progression(cinfo);
        ffi::jpeg_write_coefficients(cinfo, coefficients);
        if let Some(exif) = &exif {
            ffi::jpeg_write_marker(cinfo, APP1, exif.as_ptr(), exif.len() as c_uint);
        }
        for (_, chunk) in icc {
            ffi::jpeg_write_marker(cinfo, APP2, chunk.as_ptr(), chunk.len() as c_uint);
        }
        ffi::jpeg_finish_compress(cinfo);
        ffi::jpeg_finish_decompress(src.cinfo());
    }
    dst.take_output()
}

/// Runs `f`, turning a libjpeg error unwinding out of it into a [`JpegError`]. Any other panic
/// (a bug in this module) is resumed.
fn catch_libjpeg<T>(f: impl FnOnce() -> T) -> Result<T, JpegError> {
    // AssertUnwindSafe: every libjpeg object used by `f` is created inside it and destroyed while
    // unwinding, so no broken state can be observed afterwards.
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Ok(value),
        Err(payload) => match payload.downcast::<LibjpegFailure>() {
            Ok(failure) => Err(failure.into_error()),
            Err(other) => panic::resume_unwind(other),
        },
    }
}

/// The payload that [`error_exit`] and [`emit_message`] unwind with.
struct LibjpegFailure {
    code: c_int,
    message: String,
}

impl LibjpegFailure {
    fn into_error(self) -> JpegError {
        match self.code {
            ffi::JERR_NO_BACKING_STORE | ffi::JERR_OUT_OF_MEMORY => {
                JpegError::Unsupported(format!(
                    "image too large: libjpeg would need more than {} MiB ({})",
                    MAX_MEMORY >> 20,
                    self.message
                ))
            }
            ffi::JERR_BAD_PRECISION
            | ffi::JERR_SOF_UNSUPPORTED
            | ffi::JERR_NOT_COMPILED
            | ffi::JERR_ARITH_NOTIMPL => JpegError::Unsupported(self.message),
            _ => JpegError::Corrupt(self.message),
        }
    }
}

/// libjpeg's current message code and its text, formatted by libjpeg's `format_message`.
///
/// # Safety
/// `cinfo.err` must point at a live error manager set up by `jpeg_std_error`.
unsafe fn libjpeg_message(cinfo: &mut ffi::jpeg_common_struct) -> LibjpegFailure {
    // SAFETY: guaranteed by the caller. Copied out so no Rust reference to the error manager is
    // alive while `format_message` (which may write to it) runs.
    let (code, format) = unsafe { ((*cinfo.err).msg_code, (*cinfo.err).format_message) };
    let Some(format) = format else {
        return LibjpegFailure {
            code,
            message: format!("libjpeg error {code}"),
        };
    };
    // The C signature is `void format_message(j_common_ptr, char *buffer)` and it writes up to
    // JMSG_LENGTH_MAX (200) bytes; the bindings declare the buffer as `&[u8; 80]`, which is too
    // small and read-only, so call it with a raw pointer to a buffer of the right size.
    type FormatMessage = unsafe extern "C-unwind" fn(*mut ffi::jpeg_common_struct, *mut u8);
    // SAFETY: the two function pointer types differ only in `&T` versus `*mut T` arguments,
    // which are ABI-compatible (see "ABI compatibility" in the `fn` primitive's documentation).
    let format = unsafe {
        mem::transmute::<
            unsafe extern "C-unwind" fn(&mut ffi::jpeg_common_struct, &[u8; 80]),
            FormatMessage,
        >(format)
    };
    let mut buffer = [0_u8; JMSG_LENGTH_MAX];
    // SAFETY: `cinfo` is a live libjpeg object and `buffer` has the JMSG_LENGTH_MAX bytes that
    // libjpeg's `format_message` (installed by `jpeg_std_error`) writes at most.
    unsafe { format(cinfo, buffer.as_mut_ptr()) };
    let len = buffer
        .iter()
        .position(|&byte| byte == 0)
        .unwrap_or(buffer.len());
    LibjpegFailure {
        code,
        message: String::from_utf8_lossy(&buffer[..len]).into_owned(),
    }
}

/// libjpeg's `error_exit`: must not return, so it unwinds to [`catch_libjpeg`].
///
/// # Safety
/// Only called by libjpeg, with an object whose error manager is set up by [`install_error_mgr`].
unsafe extern "C-unwind" fn error_exit(cinfo: &mut ffi::jpeg_common_struct) {
    // SAFETY: see the function's contract.
    let failure = unsafe { libjpeg_message(cinfo) };
    // `resume_unwind`, not `panic!`: an expected error must not run the panic hook (stderr noise).
    panic::resume_unwind(Box::new(failure))
}

/// libjpeg's `emit_message`: trace messages (level ≥ 0) are ignored; warnings (level -1) are
/// corrupt or truncated data, so they unwind like errors.
///
/// # Safety
/// As for [`error_exit`].
unsafe extern "C-unwind" fn emit_message(cinfo: &mut ffi::jpeg_common_struct, msg_level: c_int) {
    if msg_level >= 0 {
        return;
    }
    // SAFETY: see the function's contract.
    let failure = unsafe { libjpeg_message(cinfo) };
    // "Warning: unknown JFIF revision number": harmless, libjpeg ignores the version.
    if failure.code == ffi::JWRN_JFIF_MAJOR {
        return;
    }
    panic::resume_unwind(Box::new(failure))
}

/// Sets up `err` as libjpeg's standard error manager with the unwinding callbacks.
fn install_error_mgr(err: &mut ffi::jpeg_error_mgr) {
    // SAFETY: `jpeg_std_error` only fills in the fields of the struct it is given.
    unsafe { ffi::jpeg_std_error(err) };
    err.error_exit = Some(error_exit);
    err.emit_message = Some(emit_message);
}

/// A libjpeg decompressor and its error manager, in one heap allocation whose address libjpeg
/// keeps (`cinfo.err`). Destroyed on drop, also while unwinding from a libjpeg error.
struct Decompressor(NonNull<DecompressState>);

struct DecompressState {
    cinfo: ffi::jpeg_decompress_struct,
    err: ffi::jpeg_error_mgr,
}

impl Decompressor {
    fn new() -> Self {
        // SAFETY: plain C structs for which all-zero bytes are valid: null pointers, `None`
        // callbacks, and C enums whose 0 is a variant (JCS_UNKNOWN, JDCT_ISLOW, JDITHER_NONE).
        let state: Box<DecompressState> = Box::new(unsafe { mem::zeroed() });
        // Owned (and so destroyed by `Drop`) before `jpeg_create_decompress` can fail.
        let this = Self(NonNull::from(Box::leak(state)));
        let state = this.0.as_ptr();
        // SAFETY: `state` is a valid allocation that only `this` owns. The error manager is
        // installed before creation, as libjpeg requires. If creation unwinds, `Drop` calls
        // `jpeg_destroy_decompress`, which does nothing for an object without a memory manager.
        unsafe {
            install_error_mgr(&mut (*state).err);
            (*state).cinfo.common.err = &raw mut (*state).err;
            ffi::jpeg_create_decompress(&raw mut (*state).cinfo);
            (*(*state).cinfo.common.mem).max_memory_to_use = MAX_MEMORY;
        }
        this
    }

    fn cinfo(&mut self) -> &mut ffi::jpeg_decompress_struct {
        // SAFETY: the allocation is owned by `self` and reached only through it.
        unsafe { &mut (*self.0.as_ptr()).cinfo }
    }

    /// Copies out the markers libjpeg saved (`jpeg_save_markers`) while reading the header.
    fn saved_markers(&mut self) -> Vec<(c_int, Vec<u8>)> {
        let mut markers = Vec::new();
        let mut next = self.cinfo().marker_list;
        while !next.is_null() {
            // SAFETY: libjpeg's saved-marker list is a valid linked list, allocated in the
            // decompressor's memory pools, until the object is finished or destroyed; each entry's
            // `data` holds `data_length` bytes (or is null when empty).
            let (marker, data, next_marker) = unsafe {
                let entry = &*next;
                let data = if entry.data.is_null() {
                    Vec::new()
                } else {
                    std::slice::from_raw_parts(entry.data, entry.data_length as usize).to_vec()
                };
                (c_int::from(entry.marker), data, entry.next)
            };
            markers.push((marker, data));
            next = next_marker;
        }
        markers
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: the object was zeroed or created by `new` and is destroyed once, here; then the
        // allocation leaked in `new` is freed. `jpeg_destroy_*` never calls the error handler.
        unsafe {
            ffi::jpeg_destroy_decompress(&mut (*self.0.as_ptr()).cinfo);
            drop(Box::from_raw(self.0.as_ptr()));
        }
    }
}

/// A libjpeg compressor with its error manager and an output destination writing into a `Vec`,
/// in one heap allocation whose addresses libjpeg keeps. Destroyed on drop, also while unwinding.
struct Compressor(NonNull<CompressState>);

struct CompressState {
    cinfo: ffi::jpeg_compress_struct,
    err: ffi::jpeg_error_mgr,
    dest: VecDestination,
}

/// A libjpeg destination manager that appends to `out` through a fixed `chunk` buffer (instead
/// of `jpeg_mem_dest`, whose `malloc`ed buffer would leak if an error struck after it grew).
#[repr(C)]
struct VecDestination {
    /// First, so that a pointer to the struct is a pointer to the manager libjpeg sees.
    mgr: ffi::jpeg_destination_mgr,
    chunk: Vec<u8>,
    out: Vec<u8>,
}

impl Compressor {
    fn new() -> Self {
        let state = Box::new(CompressState {
            // SAFETY: as in `Decompressor::new`.
            cinfo: unsafe { mem::zeroed() },
            // SAFETY: as in `Decompressor::new`.
            err: unsafe { mem::zeroed() },
            dest: VecDestination {
                mgr: ffi::jpeg_destination_mgr {
                    next_output_byte: ptr::null_mut(),
                    free_in_buffer: 0,
                    init_destination: Some(init_destination),
                    empty_output_buffer: Some(empty_output_buffer),
                    term_destination: Some(term_destination),
                },
                chunk: vec![0; 64 * 1024],
                out: Vec::new(),
            },
        });
        let this = Self(NonNull::from(Box::leak(state)));
        let state = this.0.as_ptr();
        // SAFETY: as in `Decompressor::new`. `cinfo.dest` points at `dest`, which lives as long
        // as `cinfo` and is what the destination callbacks expect.
        unsafe {
            install_error_mgr(&mut (*state).err);
            (*state).cinfo.common.err = &raw mut (*state).err;
            ffi::jpeg_create_compress(&raw mut (*state).cinfo);
            (*(*state).cinfo.common.mem).max_memory_to_use = MAX_MEMORY;
            (*state).cinfo.dest = (&raw mut (*state).dest).cast();
        }
        this
    }

    fn cinfo(&mut self) -> &mut ffi::jpeg_compress_struct {
        // SAFETY: the allocation is owned by `self` and reached only through it.
        unsafe { &mut (*self.0.as_ptr()).cinfo }
    }

    /// The bytes written so far (all of them after `jpeg_finish_compress`).
    fn take_output(&mut self) -> Vec<u8> {
        // SAFETY: the allocation is owned by `self`; libjpeg is not running.
        unsafe { mem::take(&mut (*self.0.as_ptr()).dest.out) }
    }
}

impl Drop for Compressor {
    fn drop(&mut self) {
        // SAFETY: as in `Decompressor`'s `Drop`.
        unsafe {
            ffi::jpeg_destroy_compress(&mut (*self.0.as_ptr()).cinfo);
            drop(Box::from_raw(self.0.as_ptr()));
        }
    }
}

/// The [`VecDestination`] of a compressor made by [`Compressor::new`].
///
/// # Safety
/// `cinfo` must belong to a [`Compressor`], whose `cinfo.dest` points at its `VecDestination`
/// (the manager is its first field, and the struct is `repr(C)`). It is a separate field of the
/// same allocation, so the returned reference does not overlap `cinfo`.
unsafe fn vec_destination(cinfo: &mut ffi::jpeg_compress_struct) -> &mut VecDestination {
    // SAFETY: guaranteed by the caller.
    unsafe { &mut *cinfo.dest.cast::<VecDestination>() }
}

/// # Safety
/// Only called by libjpeg on a [`Compressor`]'s object.
unsafe extern "C-unwind" fn init_destination(cinfo: &mut ffi::jpeg_compress_struct) {
    // SAFETY: see the function's contract.
    let dest = unsafe { vec_destination(cinfo) };
    dest.mgr.next_output_byte = dest.chunk.as_mut_ptr();
    dest.mgr.free_in_buffer = dest.chunk.len();
}

/// # Safety
/// Only called by libjpeg on a [`Compressor`]'s object.
unsafe extern "C-unwind" fn empty_output_buffer(
    cinfo: &mut ffi::jpeg_compress_struct,
) -> ffi::boolean {
    // SAFETY: see the function's contract.
    let dest = unsafe { vec_destination(cinfo) };
    // libjpeg calls this when the chunk is full and expects all of it to be taken (libjpeg.txt).
    dest.out.extend_from_slice(&dest.chunk);
    dest.mgr.next_output_byte = dest.chunk.as_mut_ptr();
    dest.mgr.free_in_buffer = dest.chunk.len();
    1
}

/// # Safety
/// Only called by libjpeg on a [`Compressor`]'s object.
unsafe extern "C-unwind" fn term_destination(cinfo: &mut ffi::jpeg_compress_struct) {
    // SAFETY: see the function's contract.
    let dest = unsafe { vec_destination(cinfo) };
    let used = dest.chunk.len().saturating_sub(dest.mgr.free_in_buffer);
    dest.out.extend_from_slice(&dest.chunk[..used]);
}

/// The marker segments of a JPEG's header, as (marker, payload), from SOI up to the first SOS.
/// Stops quietly at anything malformed.
fn header_segments(jpeg: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut pos = if jpeg.starts_with(&[0xFF, 0xD8]) {
        2
    } else {
        jpeg.len()
    };
    std::iter::from_fn(move || {
        loop {
            if jpeg.get(pos) != Some(&0xFF) {
                return None;
            }
            // A marker may be preceded by any number of 0xFF fill bytes.
            while jpeg.get(pos) == Some(&0xFF) {
                pos += 1;
            }
            let marker = *jpeg.get(pos)?;
            pos += 1;
            match marker {
                // Standalone markers: TEM and RSTn have no length.
                0x01 | 0xD0..=0xD7 => continue,
                // Not a marker, SOI again, EOI, or SOS: the header is over.
                0x00 | 0xD8 | 0xD9 | 0xDA => return None,
                _ => {
                    let len =
                        usize::from(u16::from_be_bytes([*jpeg.get(pos)?, *jpeg.get(pos + 1)?]));
                    // `len` counts its own two bytes; a `len` under 2 makes an empty range: `None`.
                    let payload = jpeg.get(pos + 2..pos + len)?;
                    pos += len;
                    return Some((marker, payload));
                }
            }
        }
    })
}

/// The orientation (1..=8) in an APP1 "Exif" payload: IFD0's tag 0x0112, a single SHORT.
fn orientation_from_exif(app1: &[u8]) -> Option<u8> {
    let tiff = app1.strip_prefix(EXIF_HEADER)?;
    let big_endian = match tiff.get(..4)? {
        b"MM\0\x2A" => true,
        b"II\x2A\0" => false,
        _ => return None,
    };
    let u16_at = |at: usize| {
        let bytes: [u8; 2] = tiff.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if big_endian {
            u16::from_be_bytes(bytes)
        } else {
            u16::from_le_bytes(bytes)
        })
    };
    let u32_at = |at: usize| {
        let bytes: [u8; 4] = tiff.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        })
    };
    let ifd0 = usize::try_from(u32_at(4)?).ok()?;
    let entries = u16_at(ifd0)?;
    for index in 0..usize::from(entries) {
        let entry = ifd0.checked_add(2 + 12 * index)?;
        if u16_at(entry)? != EXIF_ORIENTATION {
            continue;
        }
        // Type 3 is SHORT; the value sits in the first two bytes of the 4-byte value field.
        if u16_at(entry.checked_add(2)?)? != 3 || u32_at(entry.checked_add(4)?)? != 1 {
            return None;
        }
        return u8::try_from(u16_at(entry.checked_add(8)?)?)
            .ok()
            .filter(|value| (1..=8).contains(value));
    }
    None
}

/// An APP1 payload holding an EXIF block with only IFD0's Orientation tag (32 bytes).
fn minimal_exif(orientation: u8) -> Vec<u8> {
    let mut exif = Vec::with_capacity(32);
    exif.extend_from_slice(EXIF_HEADER);
    exif.extend_from_slice(b"MM\0\x2A"); // big-endian TIFF header
    exif.extend_from_slice(&8_u32.to_be_bytes()); // IFD0 right after it
    exif.extend_from_slice(&1_u16.to_be_bytes()); // one entry:
    exif.extend_from_slice(&EXIF_ORIENTATION.to_be_bytes()); //   tag
    exif.extend_from_slice(&3_u16.to_be_bytes()); //   type SHORT
    exif.extend_from_slice(&1_u32.to_be_bytes()); //   count
    exif.extend_from_slice(&[0, orientation, 0, 0]); //   value, left-justified
    exif.extend_from_slice(&0_u32.to_be_bytes()); // no next IFD
    exif
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::ImageDecoder;
    use image::codecs::jpeg::{JpegDecoder, JpegEncoder};
    use std::io::Cursor;
    use std::path::Path;

    /// A smooth, slightly noisy RGB test picture.
    fn rgb_pixels(width: u32, height: u32) -> Vec<u8> {
        let mut seed = 0x2545_F491_u32;
        let mut pixels = Vec::with_capacity((width * height * 3) as usize);
        for y in 0..height {
            for x in 0..width {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let noise = (seed % 16) as u8;
                pixels.extend_from_slice(&[
                    (x * 255 / width) as u8 ^ noise,
                    (y * 255 / height) as u8,
                    ((x + y) % 256) as u8 / 2 + noise,
                ]);
            }
        }
        pixels
    }

    /// A baseline JPEG from the `image` crate's encoder (not libjpeg).
    fn image_crate_jpeg(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 85)
            .encode(
                &rgb_pixels(width, height),
                width,
                height,
                image::ExtendedColorType::Rgb8,
            )
            .expect("encode");
        out
    }

    fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0xFF, marker];
        out.extend_from_slice(
            &u16::try_from(payload.len() + 2)
                .expect("segment too long")
                .to_be_bytes(),
        );
        out.extend_from_slice(payload);
        out
    }

    /// `jpeg` with `segments` inserted right after SOI.
    fn splice_after_soi(jpeg: &[u8], segments: &[Vec<u8>]) -> Vec<u8> {
        let mut out = jpeg[..2].to_vec();
        for segment in segments {
            out.extend_from_slice(segment);
        }
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    fn decode_pixels(jpeg: &[u8]) -> image::DynamicImage {
        image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg)
            .expect("image crate decodes")
    }

    /// Everything that determines the pixels, read back with libjpeg: colour space, per-component
    /// sampling, quantisation tables and every DCT coefficient.
    #[derive(Debug, PartialEq)]
    struct Coefficients {
        color_space: ffi::J_COLOR_SPACE,
        size: (u32, u32),
        components: Vec<(c_int, c_int, c_int, [u16; 64])>,
        blocks: Vec<i16>,
    }

    fn coefficients(jpeg: &[u8]) -> Coefficients {
        catch_libjpeg(|| {
            let mut src = Decompressor::new();
            // SAFETY: as in `transcode`; the block rows come from `access_virt_barray` on arrays
            // returned by `jpeg_read_coefficients`, `width_in_blocks` blocks each.
            unsafe {
                let cinfo = src.cinfo();
                ffi::jpeg_mem_src(cinfo, jpeg.as_ptr(), jpeg.len() as c_ulong);
                ffi::jpeg_read_header(cinfo, 1);
                let arrays = ffi::jpeg_read_coefficients(cinfo);
                let access = (*cinfo.common.mem)
                    .access_virt_barray
                    .expect("memory manager");
                let mut result = Coefficients {
                    color_space: cinfo.jpeg_color_space,
                    size: (cinfo.image_width, cinfo.image_height),
                    components: Vec::new(),
                    blocks: Vec::new(),
                };
                for index in 0..cinfo.num_components as usize {
                    let component = &*cinfo.comp_info.add(index);
                    let table = &*cinfo.quant_tbl_ptrs[component.quant_tbl_no as usize];
                    result.components.push((
                        component.component_id,
                        component.h_samp_factor,
                        component.v_samp_factor,
                        table.quantval,
                    ));
                    for row in 0..component.height_in_blocks {
                        let rows = access(&mut cinfo.common, *arrays.add(index), row, 1, 0);
                        let blocks =
                            std::slice::from_raw_parts(*rows, component.width_in_blocks as usize);
                        result.blocks.extend(blocks.iter().flatten());
                    }
                }
                result
            }
        })
        .expect("libjpeg reads it")
    }

    fn marker_count(jpeg: &[u8], marker: u8) -> usize {
        header_segments(jpeg).filter(|&(m, _)| m == marker).count()
    }

    /// Optimises `input` and checks that the image is unchanged, by libjpeg's coefficients and
    /// by the `image` crate's decoded pixels. Returns the output.
    fn assert_lossless(input: &[u8]) -> Vec<u8> {
        let output = optimize_lossless(input).expect("optimises");
        assert_eq!(
            coefficients(&output),
            coefficients(input),
            "DCT coefficients changed"
        );
        assert_eq!(
            decode_pixels(&output),
            decode_pixels(input),
            "decoded pixels changed"
        );
        // Progressive: SOF2.
        assert_eq!(marker_count(&output, 0xC2), 1, "output is not progressive");
        output
    }

    #[test]
    fn real_photos_are_bit_exact_and_smaller() {
        let root = Path::new("/tmp/kiln-bench/corpus/img");
        let files = [
            "science/rocket.jpg",
            "photos/grace_hopper.jpg",
            "photos/china.jpg",
            "wallpapers/nature/Aqua.jpg",
            // progressive input
            "wallpapers/nature/FreshFlower.jpg",
        ];
        for file in files {
            let path = root.join(file);
            let Ok(input) = std::fs::read(&path) else {
                eprintln!("skipping {}: not found", path.display());
                continue;
            };
            let output = assert_lossless(&input);
            eprintln!(
                "{file}: {} -> {} bytes ({:.1}% smaller)",
                input.len(),
                output.len(),
                100.0 * (1.0 - output.len() as f64 / input.len() as f64)
            );
            assert!(output.len() < input.len(), "{file} grew");
            // Idempotent in the way that matters: optimising again keeps the image.
            assert_lossless(&output);
        }
    }

    #[test]
    fn synthetic_baseline_jpeg_is_bit_exact() {
        let input = image_crate_jpeg(203, 101);
        let output = assert_lossless(&input);
        assert!(
            output.len() < input.len(),
            "{} -> {}",
            input.len(),
            output.len()
        );
    }

    #[test]
    fn truncated_jpeg_is_an_error() {
        let mut inputs = vec![image_crate_jpeg(160, 120)];
        if let Ok(rocket) = std::fs::read("/tmp/kiln-bench/corpus/img/science/rocket.jpg") {
            inputs.push(rocket);
        }
        for input in inputs {
            let error = optimize_lossless(&input[..input.len() / 2]).expect_err("half a JPEG");
            assert!(matches!(error, JpegError::Corrupt(_)), "{error:?}");
            assert!(
                error.to_string().contains("Premature end of JPEG file"),
                "{error}"
            );
            // Missing only the EOI marker is a truncation too.
            assert!(optimize_lossless(&input[..input.len() - 2]).is_err());
        }
    }

    #[test]
    fn garbage_is_an_error() {
        let mut seed = 0x9E37_79B9_u32;
        let random: Vec<u8> = (0..4096)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed as u8
            })
            .collect();
        let error = optimize_lossless(&random).expect_err("random bytes");
        assert!(error.to_string().starts_with("Not a JPEG file"), "{error}");
        // Random bytes behind a valid SOI.
        let mut fake = vec![0xFF, 0xD8];
        fake.extend_from_slice(&random);
        assert!(optimize_lossless(&fake).is_err());
        assert!(optimize_lossless(&[]).is_err());
        assert!(optimize_lossless(&[0xFF, 0xD8, 0xFF, 0xD9]).is_err());
    }

    #[test]
    fn damaged_jpegs_never_crash() {
        let input = image_crate_jpeg(64, 48);
        for cut in (0..input.len()).step_by(7) {
            assert!(optimize_lossless(&input[..cut]).is_err(), "cut at {cut}");
        }
        // Flipped bits: libjpeg may or may not notice in entropy-coded data, but must not crash.
        let mut errors = 0;
        for (i, position) in (0..input.len()).step_by(5).enumerate() {
            let mut damaged = input.clone();
            damaged[position] ^= 1 << (i % 8);
            errors += usize::from(optimize_lossless(&damaged).is_err());
        }
        assert!(errors > 0);
    }

    #[test]
    fn huge_dimensions_fail_fast_instead_of_allocating() {
        let mut input = image_crate_jpeg(16, 16);
        let sof = input
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("baseline SOF0");
        // SOF0 payload: length(2) precision(1) height(2) width(2).
        input[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]); // 60000 × 60000
        let error = optimize_lossless(&input).expect_err("bomb");
        assert!(matches!(error, JpegError::Unsupported(_)), "{error:?}");
    }

    #[test]
    fn exif_orientation_is_kept_and_the_rest_dropped() {
        let base = image_crate_jpeg(120, 80);
        // Little-endian EXIF with two other tags around the orientation, as cameras write it.
        let mut exif = EXIF_HEADER.to_vec();
        exif.extend_from_slice(b"II\x2A\0\x08\0\0\0");
        exif.extend_from_slice(&3_u16.to_le_bytes());
        exif.extend_from_slice(&[0x0F, 0x01, 2, 0, 4, 0, 0, 0, b'A', b'c', b'm', 0]); // Make
        exif.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]); // Orientation 6
        exif.extend_from_slice(&[0x1A, 0x01, 5, 0, 1, 0, 0, 0, 0x32, 0, 0, 0]); // XResolution
        exif.extend_from_slice(&[0; 4]);
        exif.extend_from_slice(&[0x48, 0, 0, 0, 1, 0, 0, 0]);
        let comment = vec![b'x'; 30_000];
        let mut photoshop = b"Photoshop 3.0\0".to_vec();
        photoshop.extend_from_slice(&[0x42; 5_000]);
        let input = splice_after_soi(
            &base,
            &[
                segment(0xE1, &exif),
                segment(0xFE, &comment),
                segment(0xED, &photoshop),
            ],
        );
        assert_eq!(exif_orientation(&input), Some(6));

        let output = assert_lossless(&input);
        assert_eq!(exif_orientation(&output), Some(6));
        let mut decoder = JpegDecoder::new(Cursor::new(&output)).expect("decoder");
        assert_eq!(
            decoder.orientation().expect("orientation"),
            image::metadata::Orientation::Rotate90
        );
        assert_eq!(marker_count(&output, 0xFE), 0, "comment kept");
        assert_eq!(marker_count(&output, 0xED), 0, "APP13 kept");
        let app1: Vec<_> = header_segments(&output)
            .filter(|&(m, _)| m == 0xE1)
            .collect();
        assert_eq!(app1, [(0xE1, minimal_exif(6).as_slice())]);
        assert!(output.len() + 35_000 < input.len());

        // Orientation 1 is the default: no EXIF at all.
        let upright = splice_after_soi(&base, &[segment(0xE1, &minimal_exif(1))]);
        assert_eq!(exif_orientation(&upright), Some(1));
        let output = optimize_lossless(&upright).expect("optimises");
        assert_eq!(marker_count(&output, 0xE1), 0);
        assert_eq!(exif_orientation(&output), None);
    }

    #[test]
    fn exif_orientation_parsing() {
        assert_eq!(exif_orientation(&[]), None);
        assert_eq!(exif_orientation(&image_crate_jpeg(8, 8)), None);
        for orientation in 1..=8 {
            let jpeg = splice_after_soi(
                &image_crate_jpeg(8, 8),
                &[segment(0xE1, &minimal_exif(orientation))],
            );
            assert_eq!(exif_orientation(&jpeg), Some(orientation));
        }
        // Out of range, wrong type, truncated IFD.
        assert_eq!(orientation_from_exif(&minimal_exif(9)), None);
        let mut long = minimal_exif(6);
        long[17] = 4; // type LONG
        assert_eq!(orientation_from_exif(&long), None);
        assert_eq!(orientation_from_exif(&minimal_exif(6)[..24]), None);
        assert_eq!(
            orientation_from_exif(b"Exif\0\0MM\0\x2A\xFF\xFF\xFF\xFF"),
            None
        );
    }

    #[test]
    fn icc_profile_is_kept_byte_for_byte() {
        // A made-up 100 kB "profile": two APP2 chunks (at most 65519 bytes of profile each).
        let profile: Vec<u8> = (0..100_000_u32).map(|i| (i * 7 % 251) as u8).collect();
        let chunks: Vec<Vec<u8>> = profile
            .chunks(65_519)
            .enumerate()
            .map(|(i, data)| segment(0xE2, &[ICC_HEADER, &[i as u8 + 1, 2], data].concat()))
            .collect();
        let input = splice_after_soi(&image_crate_jpeg(96, 64), &chunks);
        let mut decoder = JpegDecoder::new(Cursor::new(&input)).expect("decoder");
        assert_eq!(
            decoder.icc_profile().expect("icc"),
            Some(profile.clone()),
            "test input"
        );

        let output = assert_lossless(&input);
        let mut decoder = JpegDecoder::new(Cursor::new(&output)).expect("decoder");
        assert_eq!(decoder.icc_profile().expect("icc"), Some(profile));
        let app2_in: Vec<_> = header_segments(&input)
            .filter(|&(m, _)| m == 0xE2)
            .collect();
        let app2_out: Vec<_> = header_segments(&output)
            .filter(|&(m, _)| m == 0xE2)
            .collect();
        assert_eq!(app2_out, app2_in);
    }

    /// A JPEG written by libjpeg itself in colour space `jpeg_color_space`, from `input_components`
    /// -channel pixels in `in_color_space`; optionally without the Adobe marker.
    fn libjpeg_jpeg(
        in_color_space: ffi::J_COLOR_SPACE,
        jpeg_color_space: ffi::J_COLOR_SPACE,
        adobe: bool,
    ) -> Vec<u8> {
        let components = match in_color_space {
            ffi::J_COLOR_SPACE::JCS_GRAYSCALE => 1,
            ffi::J_COLOR_SPACE::JCS_CMYK => 4,
            _ => 3,
        };
        let (width, height) = (70_u32, 45_u32);
        let rgb = rgb_pixels(width, height);
        let pixels: Vec<u8> = rgb
            .chunks(3)
            .flat_map(|p| [p[0], p[1], p[2], p[0] / 2 + p[1] / 2][..components].to_vec())
            .collect();
        catch_libjpeg(|| {
            let mut dst = Compressor::new();
            // SAFETY: a standard libjpeg compression sequence; each row pointer points at
            // `width * components` bytes of `pixels`.
            unsafe {
                let cinfo = dst.cinfo();
                cinfo.image_width = width;
                cinfo.image_height = height;
                cinfo.input_components = components as c_int;
                cinfo.in_color_space = in_color_space;
                ffi::jpeg_set_defaults(cinfo);
                ffi::jpeg_set_colorspace(cinfo, jpeg_color_space);
                ffi::jpeg_set_quality(cinfo, 80, 1);
                cinfo.write_Adobe_marker &= c_int::from(adobe);
                cinfo.num_scans = 0; // baseline
                cinfo.scan_info = ptr::null();
                ffi::jpeg_start_compress(cinfo, 1);
                for row in pixels.chunks(width as usize * components) {
                    let rows = [row.as_ptr()];
                    ffi::jpeg_write_scanlines(cinfo, rows.as_ptr(), 1);
                }
                ffi::jpeg_finish_compress(cinfo);
            }
            dst.take_output()
        })
        .expect("libjpeg encodes")
    }

    #[test]
    fn colour_spaces_and_adobe_marker() {
        use ffi::J_COLOR_SPACE::*;
        let cases = [
            (JCS_GRAYSCALE, JCS_GRAYSCALE, true),
            (JCS_RGB, JCS_YCbCr, true),
            (JCS_RGB, JCS_RGB, true),
            (JCS_CMYK, JCS_CMYK, true),
            (JCS_CMYK, JCS_YCCK, true),
            (JCS_CMYK, JCS_CMYK, false),
        ];
        for (in_space, space, adobe) in cases {
            let input = libjpeg_jpeg(in_space, space, adobe);
            let output = optimize_lossless(&input).expect("optimises");
            let (before, after) = (coefficients(&input), coefficients(&output));
            assert_eq!(before.color_space, space, "test input");
            assert_eq!(after, before, "{space:?}");
            assert_eq!(
                marker_count(&output, 0xEE),
                marker_count(&input, 0xEE),
                "Adobe marker for {space:?}, adobe {adobe}"
            );
            let adobe_in: Vec<_> = header_segments(&input)
                .filter(|&(m, _)| m == 0xEE)
                .collect();
            let adobe_out: Vec<_> = header_segments(&output)
                .filter(|&(m, _)| m == 0xEE)
                .collect();
            assert_eq!(adobe_out, adobe_in, "{space:?}");
            assert_eq!(decode_pixels(&output), decode_pixels(&input), "{space:?}");
        }
    }

    #[test]
    fn works_across_threads() {
        let input = image_crate_jpeg(300, 200);
        let expected = optimize_lossless(&input).expect("optimises");
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| optimize_lossless(&input).expect("optimises")))
                .collect();
            for handle in handles {
                assert_eq!(handle.join().expect("thread"), expected);
            }
        });
    }
}
