//! Spec texts the scenarios write, parameterised by what each step changes.

/// Where an experiment spec is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Draft,
    Running,
    Stopped,
    Archived,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Draft => "draft",
            Stage::Running => "running",
            Stage::Stopped => "stopped",
            Stage::Archived => "archived",
        }
    }
}

/// An experiment on `checkout-button` in `environments`, on its fallthrough unless `rule` names one of the seed's
/// rules (`lane-1` … `lane-8`).
#[derive(Debug, Clone)]
pub(crate) struct Exp<'a> {
    pub key: &'a str,
    pub name: String,
    pub environments: &'a [&'a str],
    pub stage: Stage,
    pub hypothesis: String,
    /// Adds a third treatment (a design change).
    pub three_way: bool,
    pub justification: Option<String>,
    pub winner: Option<&'a str>,
    pub rule: &'a str,
}

impl<'a> Exp<'a> {
    pub(crate) fn new(key: &'a str, environments: &'a [&'a str]) -> Self {
        Exp {
            key,
            name: format!("Experiment {key}"),
            environments,
            stage: Stage::Draft,
            hypothesis: "A green checkout button converts better.".into(),
            three_way: false,
            justification: None,
            winner: None,
            rule: "fallthrough",
        }
    }

    /// The same experiment on `lane`, one of the seed's rules of `checkout-button` (`lane-1` … `lane-8`).
    pub(crate) fn on_lane(mut self, lane: &'a str) -> Self {
        self.rule = lane;
        self
    }

    pub(crate) fn yaml(&self) -> String {
        let envs = if self.environments.len() == 1 {
            format!("environment: {}", self.environments[0])
        } else {
            format!("environments: [{}]", self.environments.join(", "))
        };
        let (control, others) = if self.three_way { ("34", "33") } else { ("50", "50") };
        let mut s = format!(
            "kind: Experiment\nproject: shop\n{envs}\nkey: {key}\nname: {name}\nstate: {state}\niteration:\n  \
             hypothesis: {hyp}\n  primaryMetric: purchases\n  metrics: [purchases, revenue]\n",
            key = self.key,
            name = self.name,
            state = self.stage.as_str(),
            hyp = self.hypothesis,
        );
        if let Some(j) = &self.justification {
            s.push_str(&format!("  changeJustification: {j}\n"));
        }
        s.push_str(&format!(
            "  flags:\n    checkout-button:\n      rule: {rule}\n  treatments:\n    - name: Control\n      \
             baseline: true\n      allocationPercent: {control}\n      variations: {{checkout-button: control}}\n    \
             - name: Green\n      allocationPercent: {others}\n      variations: {{checkout-button: green}}\n",
            rule = self.rule,
        ));
        if self.three_way {
            s.push_str(&format!(
                "    - name: Blue\n      allocationPercent: {others}\n      variations: {{checkout-button: blue}}\n"
            ));
        }
        if let Some(w) = self.winner {
            s.push_str(&format!("stop:\n  winner: {w}\n  reason: clear result\n"));
        }
        s
    }
}

/// The legacy experiments of the `banner` flag: `(metric, environments)` and the baseline variation name.
pub(crate) fn legacy(baseline: &str, metrics: &[(&str, &[&str])]) -> String {
    let mut s = format!("kind: LegacyFlagExperiments\nproject: shop\nflag: banner\nbaseline: {baseline}\nmetrics:\n");
    if metrics.is_empty() {
        s = s.replace("metrics:\n", "metrics: []\n");
    }
    for (m, envs) in metrics {
        s.push_str(&format!("  - key: {m}\n    environments: [{}]\n", envs.join(", ")));
    }
    s
}
