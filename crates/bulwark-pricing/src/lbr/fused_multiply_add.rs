//! Multiply-add as two rounded operations (the upstream crate's default, non-`fma` build).

pub trait MulAdd {
    fn mul_add2(self, a: f64, b: f64) -> f64;
}

pub trait MulAddSelected {
    fn mul_add2_sel(self, a: f64, b: f64) -> f64;
}

impl MulAdd for f64 {
    #[inline]
    fn mul_add2(self, a: f64, b: f64) -> f64 {
        self * a + b
    }
}

impl MulAddSelected for f64 {
    #[inline]
    fn mul_add2_sel(self, a: f64, b: f64) -> f64 {
        self.mul_add2(a, b)
    }
}

#[inline]
pub fn mul_add_selected(x: f64, a: f64, b: f64) -> f64 {
    x.mul_add2(a, b)
}
