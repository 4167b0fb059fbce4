//! Built-in control catalogues (a curated subset of each framework) that policies map to.
//! A control id is `<framework>:<control>`, e.g. `eu_ai_act:art_50`.

use serde::Serialize;

#[derive(Debug, Clone, Copy, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Control {
    pub id: &'static str,
    pub title: &'static str,
}

#[derive(Debug, Clone, Copy, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Framework {
    pub id: &'static str,
    pub name: &'static str,
    pub controls: &'static [Control],
}

const fn c(id: &'static str, title: &'static str) -> Control {
    Control { id, title }
}

pub const FRAMEWORKS: &[Framework] = &[
    Framework {
        id: "eu_ai_act",
        name: "EU AI Act (Regulation (EU) 2024/1689)",
        controls: &[
            c("eu_ai_act:art_9", "Risk management system"),
            c("eu_ai_act:art_10", "Data and data governance"),
            c("eu_ai_act:art_12", "Record-keeping (automatic logging)"),
            c(
                "eu_ai_act:art_13",
                "Transparency and provision of information to deployers",
            ),
            c("eu_ai_act:art_14", "Human oversight"),
            c("eu_ai_act:art_15", "Accuracy, robustness and cybersecurity"),
            c(
                "eu_ai_act:art_50",
                "Transparency obligations: disclose AI interaction and mark generated content",
            ),
            c("eu_ai_act:art_72", "Post-market monitoring"),
        ],
    },
    Framework {
        id: "nist_ai_rmf",
        name: "NIST AI Risk Management Framework 1.0",
        controls: &[
            c(
                "nist_ai_rmf:govern_1",
                "GOVERN 1: policies, processes and practices for AI risk are in place",
            ),
            c(
                "nist_ai_rmf:map_1",
                "MAP 1: context is established and understood",
            ),
            c(
                "nist_ai_rmf:measure_2",
                "MEASURE 2: AI systems are evaluated for trustworthy characteristics",
            ),
            c(
                "nist_ai_rmf:measure_2_7",
                "MEASURE 2.7: security and resilience are evaluated",
            ),
            c(
                "nist_ai_rmf:measure_2_10",
                "MEASURE 2.10: privacy risk is examined",
            ),
            c(
                "nist_ai_rmf:manage_2",
                "MANAGE 2: strategies to maximise benefits and minimise negative impacts",
            ),
            c(
                "nist_ai_rmf:manage_4",
                "MANAGE 4: risk treatments and monitoring are documented",
            ),
        ],
    },
    Framework {
        id: "iso_42001",
        name: "ISO/IEC 42001:2023 (Annex A controls)",
        controls: &[
            c("iso_42001:a_2_2", "A.2.2 AI policy"),
            c(
                "iso_42001:a_5_2",
                "A.5.2 AI system impact assessment process",
            ),
            c(
                "iso_42001:a_6_2_4",
                "A.6.2.4 AI system verification and validation",
            ),
            c(
                "iso_42001:a_6_2_8",
                "A.6.2.8 AI system recording of event logs",
            ),
            c("iso_42001:a_7_4", "A.7.4 Quality of data for AI systems"),
            c(
                "iso_42001:a_8_2",
                "A.8.2 System documentation and information for users",
            ),
            c(
                "iso_42001:a_9_2",
                "A.9.2 Processes for responsible use of AI systems",
            ),
        ],
    },
    Framework {
        id: "gdpr",
        name: "GDPR (Regulation (EU) 2016/679)",
        controls: &[
            c("gdpr:art_5_1_c", "Art. 5(1)(c) Data minimisation"),
            c("gdpr:art_5_1_e", "Art. 5(1)(e) Storage limitation"),
            c("gdpr:art_17", "Art. 17 Right to erasure"),
            c(
                "gdpr:art_25",
                "Art. 25 Data protection by design and by default",
            ),
            c("gdpr:art_30", "Art. 30 Records of processing activities"),
            c("gdpr:art_32", "Art. 32 Security of processing"),
            c("gdpr:art_35", "Art. 35 Data protection impact assessment"),
        ],
    },
];

pub fn framework(id: &str) -> Option<&'static Framework> {
    FRAMEWORKS.iter().find(|f| f.id == id)
}

pub fn control(id: &str) -> Option<&'static Control> {
    let (fw, _) = id.split_once(':')?;
    framework(fw)?.controls.iter().find(|c| c.id == id)
}

/// Checks a policy's control list: known ids, no repeats.
pub fn validate_controls(ids: &[String]) -> Result<(), crate::CoreError> {
    if ids.len() > 50 {
        return Err(crate::CoreError::invalid("controls", "at most 50 controls"));
    }
    for (i, id) in ids.iter().enumerate() {
        if control(id).is_none() {
            return Err(crate::CoreError::invalid(
                "controls",
                format!("unknown control {id:?}; see GET /api/v1/compliance/frameworks"),
            ));
        }
        if ids[..i].contains(id) {
            return Err(crate::CoreError::invalid(
                "controls",
                format!("control {id} is listed twice"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_ids_are_unique_and_prefixed_by_their_framework() {
        let mut seen = std::collections::HashSet::new();
        for f in FRAMEWORKS {
            for c in f.controls {
                assert!(c.id.starts_with(&format!("{}:", f.id)), "{}", c.id);
                assert!(seen.insert(c.id), "{} twice", c.id);
                assert_eq!(control(c.id).unwrap().id, c.id);
            }
        }
        assert!(control("gdpr:art_99").is_none());
        assert!(validate_controls(&["gdpr:art_17".into(), "gdpr:art_17".into()]).is_err());
    }
}
