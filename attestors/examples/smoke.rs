use attestd_attestors::tpm::*;
#[tokio::main]
async fn main() {
    let tcti = std::env::args().nth(1).unwrap();
    let ak: AkAlgorithm = std::env::args()
        .nth(2)
        .unwrap_or("ecc-p256".into())
        .parse()
        .unwrap();
    let ek: EkAlgorithm = std::env::args()
        .nth(3)
        .unwrap_or("rsa2048".into())
        .parse()
        .unwrap();
    let t0 = std::time::Instant::now();
    let tpm = Tpm::open(TpmConfig {
        tcti: tcti.parse().unwrap(),
        state_dir: "/tmp/smoke-state".into(),
        ak_algorithm: ak,
        ek_algorithm: ek,
        ..Default::default()
    })
    .await
    .unwrap();
    println!(
        "open {:?} name {}",
        t0.elapsed(),
        hex::encode(&tpm.ak().name)
    );
    for alg in EkAlgorithm::ALL {
        let t = std::time::Instant::now();
        let e = tpm.ek(alg).await;
        match e {
            Ok(e) => println!(
                "ek {alg} {:?} pub {} cert {:?} chain {}",
                t.elapsed(),
                e.public.len(),
                e.certificate.as_ref().map(|c| c.len()),
                e.chain.len()
            ),
            Err(e) => println!("ek {alg} err {e}"),
        }
    }
    let sel: PcrSelection = "sha256:0,1,2,3,4,5,6,7".parse().unwrap();
    for _ in 0..5 {
        let t = std::time::Instant::now();
        let q = tpm.quote(vec![1; 32], sel.clone()).await.unwrap();
        println!(
            "quote {:?} attest {} sig {}",
            t.elapsed(),
            q.attest.len(),
            q.signature.len()
        );
    }
    println!(
        "{:?}",
        tpm.quote(vec![1; 32], "sha1:0".parse().unwrap())
            .await
            .err()
            .map(|e| e.to_string())
    );
}
