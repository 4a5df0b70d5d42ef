//! `${VAR}` in the registry's strings, replaced from the environment before
//! the document is read into its shape, so that any value may come from a
//! variable and secrets need not be written in the file.

/// A `${VAR}` whose variable is not set: the field where it was found (its
/// path in the document) and the variable's name.
#[derive(Debug, PartialEq)]
pub(super) struct UnsetVariable {
    pub field: String,
    pub var: String,
}

/// Replaces `${VAR}` in every string of the document. On a missing variable
/// returns the field where it was found and the variable's name.
pub(super) fn expand_variables(
    value: &mut serde_yaml::Value,
    field: &str,
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<(), UnsetVariable> {
    match value {
        serde_yaml::Value::String(text) => {
            let mut out = String::with_capacity(text.len());
            let mut rest = text.as_str();
            while let Some(start) = rest.find("${") {
                let Some(end) = rest[start..].find('}') else {
                    break;
                };
                let var = &rest[start + 2..start + end];
                let replacement = lookup(var).ok_or_else(|| UnsetVariable {
                    field: field.to_owned(),
                    var: var.to_owned(),
                })?;
                out.push_str(&rest[..start]);
                out.push_str(&replacement);
                rest = &rest[start + end + 1..];
            }
            out.push_str(rest);
            *text = out;
        }
        serde_yaml::Value::Mapping(map) => {
            for (key, child) in map.iter_mut() {
                let key = key.as_str().unwrap_or("?");
                let child_field = if field.is_empty() {
                    key.to_owned()
                } else {
                    format!("{field}.{key}")
                };
                expand_variables(child, &child_field, lookup)?;
            }
        }
        serde_yaml::Value::Sequence(items) => {
            for (index, child) in items.iter_mut().enumerate() {
                expand_variables(child, &format!("{field}[{index}]"), lookup)?;
            }
        }
        serde_yaml::Value::Tagged(tagged) => expand_variables(&mut tagged.value, field, lookup)?,
        serde_yaml::Value::Null | serde_yaml::Value::Bool(_) | serde_yaml::Value::Number(_) => {}
    }
    Ok(())
}

/// Whether `name` may name an environment variable: A-Z a-z 0-9 _, not
/// starting with a digit.
pub(super) fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expanded(text: &str) -> Result<serde_yaml::Value, UnsetVariable> {
        let mut value: serde_yaml::Value = serde_yaml::from_str(text).expect("YAML");
        expand_variables(&mut value, "", &|var| match var {
            "HOST" => Some("example.com".to_owned()),
            "PORT" => Some("3001".to_owned()),
            _ => None,
        })?;
        Ok(value)
    }

    fn yaml(text: &str) -> serde_yaml::Value {
        serde_yaml::from_str(text).expect("YAML")
    }

    #[test]
    fn every_variable_in_a_string_is_replaced() {
        assert_eq!(
            expanded("url: http://${HOST}:${PORT}/${PORT}").expect("set"),
            yaml("url: http://example.com:3001/3001")
        );
    }

    #[test]
    fn strings_in_sequences_and_tagged_values_are_expanded_and_other_values_kept() {
        assert_eq!(
            expanded("a: [x, '${PORT}', 7, true, null]\nb: !tag '${HOST}'").expect("set"),
            yaml("a: [x, '3001', 7, true, null]\nb: !tag example.com")
        );
    }

    #[test]
    fn an_unclosed_reference_is_kept_as_written() {
        assert_eq!(
            expanded("url: http://${PORT}/${PORT").expect("set"),
            yaml("url: http://3001/${PORT")
        );
    }

    #[test]
    fn an_unset_variable_is_reported_with_the_field_where_it_is_used() {
        assert_eq!(
            expanded("servers:\n  a:\n    args: [x, '--key=${KEY}']\n"),
            Err(UnsetVariable {
                field: "servers.a.args[1]".into(),
                var: "KEY".into(),
            })
        );
        assert_eq!(
            expanded("tool_separator: '${}'"),
            Err(UnsetVariable {
                field: "tool_separator".into(),
                var: String::new(),
            })
        );
    }

    #[test]
    fn environment_variable_names_are_letters_digits_and_underscores_not_led_by_a_digit() {
        for name in ["A", "_", "PATH", "api_key_2", "_1"] {
            assert!(is_env_var_name(name), "{name:?}");
        }
        for name in ["", "1X", "A-B", "A B", "É"] {
            assert!(!is_env_var_name(name), "{name:?}");
        }
    }
}
