//! The shape of `/proc/<pid>/cgroup`: one `hierarchy-id:controllers:path` line
//! per mounted hierarchy (`0::path` for cgroup v2), and the components of each
//! path.
//!
//! The kernel prints cgroup names unescaped, so a process allowed to create
//! cgroups (a delegated subtree) can put a newline in a name and make its line
//! look like two. Every hierarchy appears once and the v2 line is printed last,
//! so a smuggled line shows up as a repeated id or a line after `0::`; both are
//! refused, as is anything else that is not the kernel's shape.

/// One line of `/proc/<pid>/cgroup`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CgroupLine<'a> {
    /// 0 for the cgroup v2 hierarchy.
    pub hierarchy: u32,
    /// Comma-separated controllers (`cpu,cpuacct`, `name=systemd`); empty for v2.
    pub controllers: &'a str,
    pub path: &'a str,
    /// The path's components; see [`components`].
    pub components: Vec<&'a str>,
}

/// The kernel marks the v2 line of a process whose cgroup was removed (only an
/// exiting process can be in one) with this suffix.
const DELETED_SUFFIX: &str = " (deleted)";

pub(crate) fn parse_lines(text: &str) -> Result<Vec<CgroupLine<'_>>, String> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.is_empty() {
        return Err("empty".into());
    }
    let mut lines: Vec<CgroupLine<'_>> = Vec::new();
    for (index, raw) in body.split('\n').enumerate() {
        let line_number = index + 1;
        let line = parse_line(raw).map_err(|reason| format!("line {line_number}: {reason}"))?;
        if let Some(previous) = lines.iter().find(|seen| seen.hierarchy == 0) {
            return Err(format!(
                "line {line_number}: hierarchy {} after the cgroup v2 line `0::{}`",
                line.hierarchy, previous.path
            ));
        }
        if lines.iter().any(|seen| seen.hierarchy == line.hierarchy) {
            return Err(format!(
                "line {line_number}: hierarchy {} appears twice",
                line.hierarchy
            ));
        }
        lines.push(line);
    }
    Ok(lines)
}

fn parse_line(line: &str) -> Result<CgroupLine<'_>, String> {
    let mut fields = line.splitn(3, ':');
    let (Some(id), Some(controllers), Some(path)) = (fields.next(), fields.next(), fields.next())
    else {
        return Err("not `id:controllers:path`".into());
    };
    if id.is_empty() || id.len() > 10 || !id.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(format!("hierarchy id {id:?} is not a number"));
    }
    let hierarchy: u32 = id
        .parse()
        .map_err(|_| format!("hierarchy id {id:?} is out of range"))?;
    match (hierarchy, controllers.is_empty()) {
        (0, false) => return Err("cgroup v2 line (id 0) names controllers".into()),
        (1.., true) => {
            return Err(format!(
                "cgroup v1 hierarchy {hierarchy} has no controllers"
            ))
        }
        _ => {}
    }
    if hierarchy != 0 && !controllers.split(',').all(is_controller) {
        return Err(format!("controllers {controllers:?} are malformed"));
    }
    if hierarchy == 0 && path.ends_with(DELETED_SUFFIX) {
        return Err("the process's cgroup has been removed (the process is exiting)".into());
    }
    let components = components(path)?;
    Ok(CgroupLine {
        hierarchy,
        controllers,
        path,
        components,
    })
}

/// A v1 controller (`memory`, `net_cls`) or a named hierarchy (`name=systemd`);
/// the kernel allows letters, digits, `_`, `-` and `.` in names.
fn is_controller(controller: &str) -> bool {
    let name = controller.strip_prefix("name=").unwrap_or(controller);
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.'))
}

/// Splits an absolute cgroup path into components: `/` has none. Leading `..`
/// components are kept: they appear when the process is outside the reader's
/// cgroup namespace (`/../../kubepods.slice/…`), and say that what is above is
/// hidden. `..` anywhere else, `.`, and empty components never come from the
/// kernel and are refused.
pub(crate) fn components(path: &str) -> Result<Vec<&str>, String> {
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| format!("path {path:?} is not absolute"))?;
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let mut components = Vec::new();
    let mut leading = true;
    for component in rest.split('/') {
        match component {
            "" => return Err(format!("path {path:?} has an empty component")),
            "." => return Err(format!("path {path:?} has a `.` component")),
            ".." if !leading => return Err(format!("path {path:?} has `..` after a name")),
            ".." => {}
            _ => leading = false,
        }
        components.push(component);
    }
    Ok(components)
}
