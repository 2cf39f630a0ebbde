//! The live key set on real files, with the clock passed in: which key signs
//! and which are published at given times, replicas agreeing, and bad files.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};

use super::*;

/// 2023-11-14T22:13:20Z: any time well after the epoch.
const T0: i64 = 1_700_000_000;
const DAY: i64 = 86_400;

fn config(dir: &Path, jwt: &str) -> Config {
    let text = format!(
        "listen = \"127.0.0.1:0\"\n\
         trust_domain = \"example.org\"\n\
         [ca]\n\
         cert = {cert:?}\n\
         key = {key:?}\n\
         [ek]\n\
         allowlist = {allowlist:?}\n\
         [jwt]\n\
         {jwt}\n",
        cert = dir.join("ca.pem").display().to_string(),
        key = dir.join("ca.key").display().to_string(),
        allowlist = dir.join("ek-allowlist").display().to_string(),
    );
    Config::parse(&text, Path::new("issuer.toml")).expect("a valid config")
}

/// A day of pre-publication, a day's tokens, five minutes of skew.
fn daily(dir: &Path) -> Config {
    config(dir, "")
}

fn token(keys: &JwtKeys, iss: Option<&str>, at: i64) -> String {
    keys.sign(&Claims {
        iss,
        sub: "spiffe://example.org/payments",
        aud: &["sts.amazonaws.com".to_owned()],
        exp: at + 300,
        iat: at,
    })
    .expect("a token")
}

/// Verifies `token` against a JWK Set as a relying party would (the kid
/// picks the key); returns the claims, or why it was refused.
fn verify(token: &str, jwks: &[u8], at: i64) -> Result<serde_json::Value, String> {
    let set: JwkSet = serde_json::from_slice(jwks).map_err(|e| e.to_string())?;
    let kid = decode_header(token)
        .map_err(|e| e.to_string())?
        .kid
        .ok_or("no kid")?;
    let jwk = set
        .find(&kid)
        .ok_or(format!("kid {kid} is not published"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&["sts.amazonaws.com"]);
    // The test's clock, not the machine's: check exp by hand.
    validation.validate_exp = false;
    let claims = decode::<serde_json::Value>(token, &key, &validation)
        .map_err(|e| e.to_string())?
        .claims;
    if claims["exp"].as_i64().unwrap_or(0) <= at {
        return Err("expired".into());
    }
    Ok(claims)
}

fn kid_of(token: &str) -> String {
    decode_header(token).unwrap().kid.unwrap()
}

#[test]
fn a_fresh_issuer_makes_one_key_which_signs_and_is_published_in_both_forms() {
    let dir = tempfile::tempdir().unwrap();
    let config = daily(dir.path());
    let keys = JwtKeys::open(&config, T0).unwrap();
    let first = dir.path().join("jwt.key");
    assert_eq!(
        std::fs::metadata(&first).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let published = keys.published();
    assert_eq!(published.kids.len(), 1);
    assert_eq!(
        keys.signing_kid(T0).as_deref(),
        Some(published.kids[0].as_str())
    );

    let spiffe: serde_json::Value = serde_json::from_slice(&published.spiffe_jwks).unwrap();
    assert_eq!(spiffe["keys"][0]["use"], "jwt-svid");
    assert!(spiffe["keys"][0].get("alg").is_none());
    let oidc: serde_json::Value = serde_json::from_slice(&published.oidc_jwks).unwrap();
    let jwk = &oidc["keys"][0];
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["alg"], "ES256");
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-256");
    assert_eq!(jwk["kid"], published.kids[0].as_str());
    assert_eq!(jwk["x"], spiffe["keys"][0]["x"]);
    assert_eq!(jwk["y"], spiffe["keys"][0]["y"]);
    assert_eq!(
        published.oidc_jwks_digest,
        hex::encode(ring::digest::digest(
            &ring::digest::SHA256,
            &published.oidc_jwks
        ))
    );

    // Both forms verify the token; `iss` is there only when asked for.
    let plain = token(&keys, None, T0);
    for jwks in [&published.spiffe_jwks, &published.oidc_jwks] {
        let claims = verify(&plain, jwks, T0).unwrap();
        assert!(claims.get("iss").is_none(), "{claims}");
    }
    let with_iss = token(&keys, Some("https://oidc.example.org"), T0);
    let claims = verify(&with_iss, &published.oidc_jwks, T0).unwrap();
    assert_eq!(claims["iss"], "https://oidc.example.org");

    // Opening again (a restart, or a replica) makes nothing new.
    let again = JwtKeys::open(&config, T0 + 10).unwrap();
    assert_eq!(again.published(), published);
}

#[test]
fn an_existing_single_key_is_kept_as_the_first_key() {
    let dir = tempfile::tempdir().unwrap();
    // A key made by the issuer before rotation existed, at a custom path.
    let old = dir.path().join("custom/jwt.pem");
    let config = config(
        dir.path(),
        &format!("key = {:?}", old.display().to_string()),
    );
    let files = key_files(&config);
    assert_eq!(files.dir, dir.path().join("custom/jwt-keys"));
    files.create_first().unwrap();
    let kid = JwtKey::load(&old).unwrap().kid().to_owned();
    let keys = JwtKeys::open(&config, T0).unwrap();
    assert_eq!(keys.published().kids, std::slice::from_ref(&kid));
    assert_eq!(keys.signing_kid(T0), Some(kid));
    assert!(!files.dir.exists(), "nothing is made without a rotation");
}

#[test]
fn after_a_rotation_both_keys_verify_until_the_old_tokens_have_expired() {
    let dir = tempfile::tempdir().unwrap();
    let config = daily(dir.path());
    let keys = JwtKeys::open(&config, T0).unwrap();
    let old_kid = keys.signing_kid(T0).unwrap();
    let old_token = token(&keys, None, T0);

    let rotated_at = T0 + 100;
    let rotated = rotate(&config, rotated_at).unwrap();
    assert_eq!(rotated.activation, rotated_at + DAY);
    assert_eq!(
        rotated.path,
        dir.path()
            .join(format!("jwt-keys/{}.key", rotated_at + DAY))
    );

    // Published at once, not signing.
    let refreshed = keys.refresh(rotated_at).unwrap();
    assert!(refreshed.changed);
    assert_eq!(refreshed.published, [old_kid.clone(), rotated.kid.clone()]);
    assert_eq!(refreshed.signing, old_kid);
    assert_eq!(kid_of(&token(&keys, None, rotated.activation - 1)), old_kid);

    // At activation the new key signs, and the old token still verifies.
    let refreshed = keys.refresh(rotated.activation).unwrap();
    assert!(
        !refreshed.changed,
        "activation changes who signs, not the set"
    );
    let new_token = token(&keys, None, rotated.activation);
    assert_eq!(kid_of(&new_token), rotated.kid);
    let jwks = keys.published().oidc_jwks.clone();
    let last_old_token = token(&keys, None, rotated.activation - 1);
    assert!(verify(&last_old_token, &jwks, rotated.activation).is_ok());
    assert!(verify(&new_token, &jwks, rotated.activation).is_ok());

    // Kept until the last old token (signed just before activation) has
    // expired, with the skew.
    let until = rotated.activation + DAY + 300;
    let kept = keys.refresh(until - 1).unwrap();
    assert_eq!(kept.published, [old_kid.clone(), rotated.kid.clone()]);
    let gone = keys.refresh(until).unwrap();
    assert!(gone.changed);
    assert_eq!(gone.published, std::slice::from_ref(&rotated.kid));
    let jwks = keys.published().oidc_jwks.clone();
    let refused = verify(&old_token, &jwks, until).unwrap_err();
    assert!(refused.contains("not published"), "{refused}");

    let states: Vec<KeyState> = list(&config, until)
        .unwrap()
        .into_iter()
        .map(|status| status.state)
        .collect();
    assert_eq!(states, [KeyState::Expired, KeyState::Signing]);
}

#[test]
fn replicas_sharing_the_files_publish_the_same_bytes_and_sign_with_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        "prepublish_secs = 600\nrotate_after_secs = 3600",
    );
    let one = JwtKeys::open(&config, T0).unwrap();
    // Automatic rotation from the first key is overdue: a key one window
    // ahead, on the poll grid.
    let made: Vec<KeyStatus> = list(&config, T0).unwrap();
    assert_eq!(made.len(), 2);
    let next = made[1].activation;
    assert!(
        (T0 + 600..T0 + 660).contains(&next) && next % 60 == 0,
        "{next}"
    );
    assert_eq!(made[1].state, KeyState::Pending);

    // A replica opening a little later makes nothing more and agrees.
    let two = JwtKeys::open(&config, T0 + 5).unwrap();
    one.refresh(T0 + 5).unwrap();
    assert_eq!(list(&config, T0 + 5).unwrap().len(), 2);
    assert_eq!(one.published(), two.published());
    assert_eq!(one.signing_kid(T0 + 5), two.signing_kid(T0 + 5));

    // When the new key signs, each replica makes — or finds — one successor
    // an hour later; both publish it once the window reaches it.
    let refreshed_one = one.refresh(next).unwrap();
    let refreshed_two = two.refresh(next + 1).unwrap();
    assert_eq!(
        [refreshed_one.made.is_some(), refreshed_two.made.is_some()],
        [true, false]
    );
    let statuses = list(&config, next + 1).unwrap();
    assert_eq!(statuses.len(), 3);
    assert_eq!(statuses[2].activation, next + 3600);
    assert_eq!(statuses[2].state, KeyState::Pending);
    one.refresh(next + 3000).unwrap();
    two.refresh(next + 3000).unwrap();
    assert_eq!(one.published(), two.published());
    assert_eq!(one.published().kids.len(), 3, "retired, signing, upcoming");
}

#[test]
fn a_broken_key_file_keeps_the_keys_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let config = daily(dir.path());
    let keys = JwtKeys::open(&config, T0).unwrap();
    let before = keys.published();
    let rotated = rotate(&config, T0).unwrap();
    std::fs::set_permissions(&rotated.path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = keys.refresh(T0).unwrap_err().to_string();
    assert!(error.contains("readable by others"), "{error}");
    assert_eq!(keys.published(), before);
    // `rotate` refuses to add to a broken set, too.
    assert!(rotate(&config, T0).is_err());
    std::fs::set_permissions(&rotated.path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(keys.refresh(T0).unwrap().published.len(), 2);
}

#[test]
fn a_set_with_no_active_key_is_not_taken_up() {
    let dir = tempfile::tempdir().unwrap();
    let config = daily(dir.path());
    let keys = JwtKeys::open(&config, T0).unwrap();
    let rotated = rotate(&config, T0).unwrap();
    std::fs::remove_file(dir.path().join("jwt.key")).unwrap();
    let error = keys.refresh(T0).unwrap_err();
    assert!(matches!(error, JwtError::NoActiveKey { .. }), "{error}");
    assert_eq!(keys.published().kids.len(), 1);
    // From its activation on, the remaining key is enough.
    let refreshed = keys.refresh(rotated.activation).unwrap();
    assert_eq!(refreshed.signing, rotated.kid);
}

#[test]
fn two_rotations_in_one_second_get_two_activation_times() {
    let dir = tempfile::tempdir().unwrap();
    let config = daily(dir.path());
    JwtKeys::open(&config, T0).unwrap();
    let one = rotate(&config, T0).unwrap();
    let two = rotate(&config, T0).unwrap();
    assert_eq!(two.activation, one.activation + 1);
    assert_ne!(one.kid, two.kid);
}
