//! Device sample formats and their conversion to and from the ring's `f32`.
//!
//! The ring always carries `f32` in [-1, 1]; whatever the device negotiated is converted in
//! the callback, one sample at a time, with no allocation. Float-to-integer `as` casts
//! saturate (and turn NaN into 0), so even a value that escaped sanitising cannot wrap.

use std::fmt;

/// The sample formats the engine converts to and from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SampleFormat {
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
}

impl fmt::Display for SampleFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            SampleFormat::F32 => "f32",
            SampleFormat::F64 => "f64",
            SampleFormat::I8 => "i8",
            SampleFormat::I16 => "i16",
            SampleFormat::I32 => "i32",
            SampleFormat::I64 => "i64",
            SampleFormat::U8 => "u8",
            SampleFormat::U16 => "u16",
            SampleFormat::U32 => "u32",
            SampleFormat::U64 => "u64",
        };
        f.write_str(name)
    }
}

/// A sample type a device may ask for.
///
/// `from_f32` expects a sanitised value in [-1, 1]; out-of-range values saturate. Integer
/// formats map -1.0 to their minimum and 0.0 to their origin (0 for signed types, the
/// midpoint for unsigned ones); +1.0 saturates one step below 2^(bits-1) above the origin.
pub trait DeviceSample: Copy + Send + 'static {
    /// The format's tag.
    const FORMAT: SampleFormat;
    /// The value of silence (the origin of the format).
    const SILENCE: Self;
    /// Converts a ring sample to the device's format.
    fn from_f32(value: f32) -> Self;
    /// Converts a captured sample to the ring's `f32`.
    fn to_f32(self) -> f32;
}

impl DeviceSample for f32 {
    const FORMAT: SampleFormat = SampleFormat::F32;
    const SILENCE: Self = 0.0;
    #[inline]
    fn from_f32(value: f32) -> Self {
        value
    }
    #[inline]
    fn to_f32(self) -> f32 {
        self
    }
}

impl DeviceSample for f64 {
    const FORMAT: SampleFormat = SampleFormat::F64;
    const SILENCE: Self = 0.0;
    #[inline]
    fn from_f32(value: f32) -> Self {
        f64::from(value)
    }
    #[inline]
    fn to_f32(self) -> f32 {
        self as f32
    }
}

/// Signed integers: scale by 2^(bits-1), round, saturate.
macro_rules! signed {
    ($t:ty, $format:ident, $float:ty, $scale:expr) => {
        impl DeviceSample for $t {
            const FORMAT: SampleFormat = SampleFormat::$format;
            const SILENCE: Self = 0;
            #[inline]
            fn from_f32(value: f32) -> Self {
                (<$float>::from(value) * $scale).round() as $t
            }
            #[inline]
            fn to_f32(self) -> f32 {
                (self as $float / $scale) as f32
            }
        }
    };
}

/// Unsigned integers are offset binary: the signed value with its sign bit flipped, so NaN
/// (0 as a signed value) becomes the origin, as it does for signed formats.
macro_rules! unsigned {
    ($t:ty, $format:ident, $signed:ty) => {
        impl DeviceSample for $t {
            const FORMAT: SampleFormat = SampleFormat::$format;
            const SILENCE: Self = 1 << (<$t>::BITS - 1);
            #[inline]
            fn from_f32(value: f32) -> Self {
                (<$signed>::from_f32(value) as $t) ^ Self::SILENCE
            }
            #[inline]
            fn to_f32(self) -> f32 {
                ((self ^ Self::SILENCE) as $signed).to_f32()
            }
        }
    };
}

signed!(i8, I8, f32, 128.0);
signed!(i16, I16, f32, 32_768.0);
signed!(i32, I32, f64, 2_147_483_648.0);
signed!(i64, I64, f64, 9_223_372_036_854_775_808.0);
unsigned!(u8, U8, i8);
unsigned!(u16, U16, i16);
unsigned!(u32, U32, i32);
unsigned!(u64, U64, i64);

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: DeviceSample + PartialEq + fmt::Debug>(min: T, max: T) {
        assert_eq!(T::from_f32(0.0), T::SILENCE, "{}", T::FORMAT);
        assert_eq!(T::from_f32(-1.0), min, "{}", T::FORMAT);
        assert_eq!(T::from_f32(1.0), max, "{}", T::FORMAT);
        assert_eq!(T::from_f32(-7.5), min, "{} saturates low", T::FORMAT);
        assert_eq!(T::from_f32(7.5), max, "{} saturates high", T::FORMAT);
        assert_eq!(
            T::from_f32(f32::NAN),
            T::SILENCE,
            "{} turns NaN into silence",
            T::FORMAT
        );
        assert_eq!(T::SILENCE.to_f32(), 0.0, "{}", T::FORMAT);
        assert_eq!(min.to_f32(), -1.0, "{}", T::FORMAT);
        for x in [-0.75f32, -0.25, 0.125, 0.5, 0.9] {
            let back = T::from_f32(x).to_f32();
            assert!(
                (back - x).abs() < 1.0 / 100.0,
                "{}: {x} came back as {back}",
                T::FORMAT
            );
        }
    }

    #[test]
    fn every_format_maps_silence_extremes_and_saturates() {
        check::<i8>(i8::MIN, i8::MAX);
        check::<i16>(i16::MIN, i16::MAX);
        check::<i32>(i32::MIN, i32::MAX);
        check::<i64>(i64::MIN, i64::MAX);
        check::<u8>(0, u8::MAX);
        check::<u16>(0, u16::MAX);
        check::<u32>(0, u32::MAX);
        check::<u64>(0, u64::MAX);
        assert_eq!(f32::from_f32(0.25), 0.25);
        assert_eq!(f64::from_f32(-0.5), -0.5);
    }

    #[test]
    fn sixteen_bit_conversion_is_exact_on_its_grid() {
        for v in [i16::MIN, -12_345, -1, 0, 1, 12_345, i16::MAX] {
            assert_eq!(i16::from_f32(v.to_f32()), v);
        }
        for v in [0u16, 1, 32_767, 32_768, 40_000, u16::MAX] {
            assert_eq!(u16::from_f32(v.to_f32()), v);
        }
    }
}
