use kiln::{Context, Tensor};
fn main() -> kiln::Result<()> {
    let ctx = Context::new()?;
    let mut m = kiln::nn::zoo::seed_cnn(&ctx, 1e-3, 1)?;
    let xv: Vec<f32> = (0..64 * 784).map(|i| ((i * 37 % 101) as f32) / 101.0).collect();
    let x = Tensor::from_slice(&ctx, &xv, &[64, 1, 28, 28])?;
    let labels: Vec<i32> = (0..64).map(|i| i * 7 % 10).collect();
    let y = Tensor::from_slice(&ctx, &labels, &[64])?;
    for step in 0..3 {
        let (loss, _) = m.train_step(&x, &y, None)?;
        let mut out: Vec<Tensor> = m.parameters().iter().map(|p| p.value()).collect();
        if let Some(o) = m.optimizer() { out.extend(o.state()); }
        out.push(loss);
        let refs: Vec<&Tensor> = out.iter().collect();
        let b = ctx.memory_stats();
        ctx.realize(&refs)?;
        ctx.synchronize()?;
        let a = ctx.memory_stats();
        println!("step {step}: dispatches {} fused kernels {} fused ops {}", a.last_dispatches, a.fused_kernels - b.fused_kernels, a.fused_ops - b.fused_ops);
    }
    Ok(())
}
