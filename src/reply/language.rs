//! The language a reporter wrote in, so the reply speaks it.
//!
//! In: the subject and the reporter's own text (not carried messages). Out:
//! one of the languages we have replies in. Counting common short words is
//! enough to tell these five apart in a few lines of prose; quoted text is
//! not the reporter's, log lines are English whatever the reporter speaks,
//! and without clear signs of another language the answer is English.

pub use crate::model::reply::Language;

impl Language {
    pub const ALL: [Language; 5] = [
        Language::En,
        Language::De,
        Language::Es,
        Language::Fr,
        Language::Pt,
    ];

    /// The ISO 639-1 code, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::De => "de",
            Language::Es => "es",
            Language::Fr => "fr",
            Language::Pt => "pt",
        }
    }

    pub fn parse(code: &str) -> Option<Language> {
        Language::ALL.into_iter().find(|l| l.as_str() == code)
    }

    /// Short words frequent in prose of the language and rare in the others'.
    fn markers(self) -> &'static [&'static str] {
        match self {
            Language::En => &[
                "the", "and", "is", "are", "this", "that", "our", "we", "have", "with", "please",
                "you", "your", "been", "which", "was", "hello", "thanks", "regards", "it",
            ],
            Language::De => &[
                "der", "die", "das", "und", "ist", "nicht", "wir", "ich", "mit", "von", "uns",
                "ihr", "ihre", "ihrem", "ihren", "bitte", "eine", "einen", "auf", "sich", "werden",
                "wurde", "seit", "hallo", "danke", "guten", "tag", "sie", "den", "dem", "wird",
                "unser", "unsere", "gruß", "grüße",
            ],
            Language::Es => &[
                "el", "los", "las", "que", "del", "una", "nuestro", "nuestra", "desde", "por",
                "con", "está", "están", "hemos", "favor", "ataque", "muy", "hola", "gracias",
                "usted", "ustedes", "y", "es", "todos", "pueden", "su", "sus", "estamos",
            ],
            Language::Fr => &[
                "le",
                "les",
                "des",
                "est",
                "une",
                "nous",
                "notre",
                "nos",
                "vous",
                "votre",
                "depuis",
                "dans",
                "avec",
                "pour",
                "sur",
                "merci",
                "cette",
                "qui",
                "sont",
                "bonjour",
                "je",
                "et",
                "pas",
                "ne",
                "au",
                "aux",
                "du",
                "cordialement",
            ],
            Language::Pt => &[
                "os", "um", "uma", "não", "nosso", "nossa", "nossos", "está", "estão", "desde",
                "com", "por", "favor", "ataque", "vocês", "você", "seu", "sua", "são", "foi",
                "olá", "obrigado", "obrigada", "do", "da", "dos", "das", "em", "meu", "minha",
                "estamos", "isso", "sendo", "pela", "pelo", "prezados",
            ],
        }
    }
}

/// Words of another language needed before a reply leaves English.
const MIN_MARKERS: usize = 3;

/// Text looked at: the reporter's prose is at the top, and a body of pasted
/// logs can run to megabytes.
const MAX_TEXT_BYTES: usize = 64 * 1024;

/// The language of `subject` and `text` (the reporter's own words).
pub fn detect(subject: Option<&str>, text: &str) -> Language {
    let text = crate::truncate_at_char(text, MAX_TEXT_BYTES);
    let mut counts = [0usize; Language::ALL.len()];
    let lines = subject.into_iter().chain(text.lines());
    for line in lines.filter(|line| !line.trim_start().starts_with('>')) {
        // Logs are English whatever the reporter speaks: their words count
        // for no language, but another language's words in them still do.
        let is_log = is_log_line(line);
        for word in line
            .split(|c: char| !c.is_alphabetic())
            .filter(|w| !w.is_empty())
        {
            let word = word.to_lowercase();
            for (i, language) in Language::ALL.iter().enumerate() {
                if !(is_log && *language == Language::En)
                    && language.markers().contains(&word.as_str())
                {
                    counts[i] += 1;
                }
            }
        }
    }
    let english = counts[0];
    Language::ALL
        .into_iter()
        .zip(counts)
        .skip(1)
        .filter(|&(_, n)| n >= MIN_MARKERS && n > english)
        .max_by_key(|&(_, n)| n)
        .map_or(Language::En, |(language, _)| language)
}

/// A line a program wrote: it starts with a date or an address, or has a
/// syslog `program[pid]:` tag or firewall fields.
fn is_log_line(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with(|c: char| c.is_ascii_digit()) || line.contains("]: ") || line.contains("DPT=")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_in_each_language_is_recognised() {
        let cases = [
            ("Port scan", "Hello, we see a port scan from your network against our servers. Please stop it, this is the third time and we have logs.", Language::En),
            ("Angriff", "Guten Tag, seit gestern wird unser Server von einer Ihrer Adressen angegriffen. Bitte stellen Sie das ab, wir haben die Logs.", Language::De),
            ("Ataque", "Hola, desde ayer una de sus direcciones está atacando nuestro servidor. Por favor, detengan el ataque, tenemos los registros.", Language::Es),
            ("Attaque", "Bonjour, depuis hier une de vos adresses attaque notre serveur. Merci de faire cesser cette attaque, nous avons les journaux.", Language::Fr),
            ("Ataque", "Olá, desde ontem um dos seus endereços está atacando o nosso servidor. Por favor, parem o ataque, temos os registos e não é a primeira vez.", Language::Pt),
        ];
        for (subject, text, expected) in cases {
            assert_eq!(detect(Some(subject), text), expected, "{text}");
        }
    }

    #[test]
    fn logs_quotes_and_terse_mail_stay_english() {
        // English log lines under two German words do not make it English
        // by weight, and do not make it German either: too little to go on.
        let text = "Siehe Logs:\n192.0.2.1,2026-11-26T10:00:00Z,sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2\n";
        assert_eq!(detect(None, text), Language::En);
        let quoted = "> Bonjour, nous avons reçu votre rapport et nous vous remercions\nsee above";
        assert_eq!(detect(None, quoted), Language::En);
        assert_eq!(detect(Some("spam"), ""), Language::En);
    }
}
