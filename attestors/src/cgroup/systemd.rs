//! The systemd unit and slice a cgroup path places a process in, the way systemd
//! itself reads a path: leading `.slice` components, then the first unit.
//!
//! Everything below a unit's cgroup belongs to that unit (and, with
//! `Delegate=yes`, to whoever runs it), so the unit is the first non-slice
//! component, not the last: `/user.slice/user-1000.slice/user@1000.service/app.slice/x.service`
//! is in `user@1000.service`, and user 1000 chose the rest.

/// Unit types whose processes live in their own cgroup.
const UNIT_SUFFIXES: [&str; 5] = [".service", ".scope", ".socket", ".mount", ".swap"];
/// systemd's limit on unit name length.
const UNIT_NAME_MAX: usize = 255;
/// systemd's name for the root slice, which has no directory of its own.
const ROOT_SLICE: &str = "-.slice";

/// The systemd placement of a process, as far as the path shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Placement {
    pub unit: Option<String>,
    pub slice: Option<String>,
}

/// Reads the unit and slice from a path's components. A path behind the
/// reader's cgroup namespace (leading `..`) shows its unit only if a visible
/// slice encloses it; otherwise the unit could be nested inside a hidden one.
pub(crate) fn find_placement(components: &[&str]) -> Placement {
    let hidden_prefix = components.iter().take_while(|&&name| name == "..").count();
    let visible = &components[hidden_prefix..];
    let slices = visible.iter().take_while(|name| is_slice(name)).count();
    let Some(&unit) = visible.get(slices).filter(|name| is_unit(name)) else {
        return Placement::default();
    };
    let slice = match slices.checked_sub(1) {
        Some(last) => visible[last].to_owned(),
        None if hidden_prefix == 0 => ROOT_SLICE.to_owned(),
        None => return Placement::default(),
    };
    Placement {
        unit: Some(unit.to_owned()),
        slice: Some(slice),
    }
}

fn is_slice(name: &str) -> bool {
    name.strip_suffix(".slice")
        .is_some_and(|stem| !stem.is_empty() && is_unit_name(name))
}

fn is_unit(name: &str) -> bool {
    UNIT_SUFFIXES.iter().any(|suffix| {
        name.strip_suffix(suffix)
            .is_some_and(|stem| !stem.is_empty() && is_unit_name(name))
    })
}

/// systemd's unit-name alphabet: ASCII letters and digits, `:-_.\@`.
fn is_unit_name(name: &str) -> bool {
    name.len() <= UNIT_NAME_MAX
        && name.bytes().all(|byte| {
            byte.is_ascii_alphanumeric() || matches!(byte, b':' | b'-' | b'_' | b'.' | b'\\' | b'@')
        })
}
