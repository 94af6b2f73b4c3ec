//! The random numbers of the two generators that are not the project's first
//! (`regime.rs`, `heavy.rs`): PCG32 (O'Neill's permuted congruential
//! generator, XSH RR) rather than the first generator's SplitMix64, so that no
//! stream is shared with it, and the distributions those generators draw from.

/// PCG32 (XSH RR): 64-bit state, 32-bit output, one stream per `stream` value.
#[derive(Debug, Clone)]
pub struct Pcg32 {
    state: u64,
    inc: u64,
}

impl Pcg32 {
    const MULT: u64 = 6_364_136_223_846_793_005;

    /// A generator for `seed` on stream `stream`.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut rng = Pcg32 {
            state: 0,
            inc: (stream << 1) | 1,
        };
        rng.next_u32();
        rng.state = rng.state.wrapping_add(seed);
        rng.next_u32();
        rng
    }

    /// Next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        let old = self.state;
        self.state = old.wrapping_mul(Self::MULT).wrapping_add(self.inc);
        let xorshifted = (((old >> 18) ^ old) >> 27) as u32;
        let rot = (old >> 59) as u32;
        xorshifted.rotate_right(rot)
    }

    /// Uniform in `[0, 1)`, 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        let hi = u64::from(self.next_u32()) >> 5;
        let lo = u64::from(self.next_u32()) >> 6;
        ((hi << 26) | lo) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// Log-uniform in `[lo, hi)`.
    pub fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        (self.uniform(lo.ln(), hi.ln())).exp()
    }

    /// Uniform integer in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + ((self.next_f64() * (hi - lo + 1) as f64) as usize).min(hi - lo)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// Standard normal (Marsaglia's polar method, one of the pair kept).
    pub fn normal(&mut self) -> f64 {
        loop {
            let u = self.uniform(-1.0, 1.0);
            let v = self.uniform(-1.0, 1.0);
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                return u * (-2.0 * s.ln() / s).sqrt();
            }
        }
    }

    /// Exponential with the given mean.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.next_f64()).ln()
    }

    /// Gamma with the given shape and mean (Marsaglia and Tsang; shapes below
    /// 1 by the boost `G(a) = G(a + 1) · U^(1/a)`).
    pub fn gamma(&mut self, shape: f64, mean: f64) -> f64 {
        let scale = mean / shape;
        if shape < 1.0 {
            let u = self.next_f64().max(1e-300);
            return self.gamma(shape + 1.0, (shape + 1.0) * scale) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.next_f64();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v * scale;
            }
        }
    }

    /// Student's t with `nu` degrees of freedom: a normal over the root of
    /// a chi-square (a gamma) per degree of freedom.
    pub fn student_t(&mut self, nu: f64) -> f64 {
        let chi2 = self.gamma(nu / 2.0, nu);
        self.normal() / (chi2 / nu).sqrt()
    }

    /// Pareto with tail index `alpha` and minimum 1.
    pub fn pareto(&mut self, alpha: f64) -> f64 {
        (1.0 - self.next_f64()).powf(-1.0 / alpha)
    }
}

#[cfg(test)]
mod tests {
    use super::Pcg32;

    fn moments(v: &[f64]) -> (f64, f64) {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64;
        (m, var)
    }

    #[test]
    fn the_distributions_have_the_moments_they_claim() {
        let mut rng = Pcg32::new(42, 7);
        let n = 40_000;
        let normal: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let (m, v) = moments(&normal);
        assert!(m.abs() < 0.03 && (v - 1.0).abs() < 0.05, "normal {m} {v}");
        let gamma: Vec<f64> = (0..n).map(|_| rng.gamma(4.0, 2.0)).collect();
        let (m, v) = moments(&gamma);
        // Shape 4, mean 2: variance mean² / shape = 1.
        assert!(
            (m - 2.0).abs() < 0.05 && (v - 1.0).abs() < 0.08,
            "gamma {m} {v}"
        );
        let small: Vec<f64> = (0..n).map(|_| rng.gamma(0.5, 1.0)).collect();
        let (m, v) = moments(&small);
        assert!(
            (m - 1.0).abs() < 0.05 && (v - 2.0).abs() < 0.25,
            "gamma {m} {v}"
        );
        let exp: Vec<f64> = (0..n).map(|_| rng.exponential(3.0)).collect();
        assert!((moments(&exp).0 - 3.0).abs() < 0.1);
        // t with 5 degrees of freedom: variance 5/3.
        let t: Vec<f64> = (0..n).map(|_| rng.student_t(5.0)).collect();
        let (m, v) = moments(&t);
        assert!(m.abs() < 0.05 && (v - 5.0 / 3.0).abs() < 0.2, "t {m} {v}");
        // Pareto 3: mean 3/2.
        let p: Vec<f64> = (0..n).map(|_| rng.pareto(3.0)).collect();
        assert!((moments(&p).0 - 1.5).abs() < 0.05);
        assert!(p.iter().all(|x| *x >= 1.0));
        let mut a = Pcg32::new(1, 2);
        let mut b = Pcg32::new(1, 3);
        assert_ne!(a.next_u32(), b.next_u32(), "streams differ");
    }
}
