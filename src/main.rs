fn main() -> kiln::Result<()> {
    let ctx = kiln::Context::new()?;
    println!("{:?}", ctx.adapter_info());
    let a = kiln::Tensor::from_slice(&ctx, &[1.0f32, -2.0, 3.0, 4.0], &[2, 2])?;
    let b = a.add(&a)?.relu()?;
    println!("{:?}", b.to_vec::<f32>()?);
    Ok(())
}
