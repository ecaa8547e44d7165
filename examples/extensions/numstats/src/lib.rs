//! `numstats._native`: a PyO3 extension module, unchanged from what it would
//! be for any CPython. `describe(values)` summarises a sequence of floats in
//! one native pass, `histogram(values, bins)` counts them into equal-width
//! bins, and `Running` accumulates statistics across calls.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Welford's running mean and variance (numerically stable).
#[derive(Debug, Clone, Copy, Default)]
struct Moments {
    count: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl Moments {
    fn push(&mut self, x: f64) {
        if self.count == 0 {
            self.min = x;
            self.max = x;
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    fn variance(&self) -> f64 {
        if self.count < 2 {
            0.0
        } else {
            self.m2 / (self.count - 1) as f64
        }
    }
}

fn checked(values: &[f64]) -> PyResult<()> {
    if values.is_empty() {
        return Err(PyValueError::new_err("values must not be empty"));
    }
    if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
        return Err(PyValueError::new_err(format!(
            "values must be finite, got {bad}"
        )));
    }
    Ok(())
}

/// `describe(values)`: count, mean, sample standard deviation, min and max.
#[pyfunction]
fn describe<'py>(py: Python<'py>, values: Vec<f64>) -> PyResult<Bound<'py, PyDict>> {
    checked(&values)?;
    let mut m = Moments::default();
    for &v in &values {
        m.push(v);
    }
    let out = PyDict::new(py);
    out.set_item("count", m.count)?;
    out.set_item("mean", m.mean)?;
    out.set_item("std", m.variance().sqrt())?;
    out.set_item("min", m.min)?;
    out.set_item("max", m.max)?;
    Ok(out)
}

/// `histogram(values, bins)`: counts per equal-width bin over [min, max].
#[pyfunction]
fn histogram(values: Vec<f64>, bins: usize) -> PyResult<Vec<u64>> {
    checked(&values)?;
    if bins == 0 {
        return Err(PyValueError::new_err("bins must be at least 1"));
    }
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0u64; bins];
    for &v in &values {
        let i = if width == 0.0 {
            0
        } else {
            (((v - lo) / width) as usize).min(bins - 1)
        };
        counts[i] += 1;
    }
    Ok(counts)
}

/// A streaming accumulator: `push(x)`, then `mean`, `std`, `count`.
#[pyclass]
#[derive(Default)]
struct Running {
    moments: Moments,
}

#[pymethods]
impl Running {
    #[new]
    fn new() -> Self {
        Running::default()
    }

    /// Adds one value.
    fn push(&mut self, x: f64) -> PyResult<()> {
        if !x.is_finite() {
            return Err(PyValueError::new_err("value must be finite"));
        }
        self.moments.push(x);
        Ok(())
    }

    #[getter]
    fn count(&self) -> u64 {
        self.moments.count
    }

    #[getter]
    fn mean(&self) -> f64 {
        self.moments.mean
    }

    #[getter]
    fn std(&self) -> f64 {
        self.moments.variance().sqrt()
    }

    fn __repr__(&self) -> String {
        format!(
            "Running(count={}, mean={})",
            self.moments.count, self.moments.mean
        )
    }
}

/// The module: `import numstats._native` (the `numstats` package wraps it).
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(describe, m)?)?;
    m.add_function(wrap_pyfunction!(histogram, m)?)?;
    m.add_class::<Running>()?;
    Ok(())
}
