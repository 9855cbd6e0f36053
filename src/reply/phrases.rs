//! The words of a reply that are not in its template: the subject, the
//! name of the abuse type, and how to send each missing piece of evidence,
//! in each language we reply in.

use super::Language;

/// What the subject says after `[abuse #ID]`, per reply kind.
pub fn subject(language: Language, kind: &str) -> &'static str {
    use Language::*;
    match (kind, language) {
        ("ack", En) => "Report received",
        ("ack", De) => "Meldung erhalten",
        ("ack", Es) => "Aviso recibido",
        ("ack", Fr) => "Signalement reçu",
        ("ack", Pt) => "Denúncia recebida",
        ("needs_info", En) => "More information needed",
        ("needs_info", De) => "Weitere Angaben nötig",
        ("needs_info", Es) => "Necesitamos más información",
        ("needs_info", Fr) => "Informations complémentaires nécessaires",
        ("needs_info", Pt) => "Precisamos de mais informações",
        ("not_ours", En) => "Not on our network",
        ("not_ours", De) => "Nicht in unserem Netz",
        ("not_ours", Es) => "No está en nuestra red",
        ("not_ours", Fr) => "Hors de notre réseau",
        ("not_ours", Pt) => "Não está na nossa rede",
        ("too_old", En) => "Events too old to act on",
        ("too_old", De) => "Ereignisse zu alt zum Handeln",
        ("too_old", Es) => "Hechos demasiado antiguos",
        ("too_old", Fr) => "Faits trop anciens pour agir",
        ("too_old", Pt) => "Eventos demasiado antigos",
        ("notice", En) => "Abuse reports about your network",
        ("notice", De) => "Missbrauchsmeldungen zu Ihrem Netz",
        ("notice", Es) => "Avisos de abuso sobre su red",
        ("notice", Fr) => "Signalements d'abus sur votre réseau",
        ("notice", Pt) => "Denúncias de abuso sobre a sua rede",
        ("digest", En) => "More abuse reports about your network",
        ("digest", De) => "Weitere Missbrauchsmeldungen zu Ihrem Netz",
        ("digest", Es) => "Más avisos de abuso sobre su red",
        ("digest", Fr) => "Nouveaux signalements d'abus sur votre réseau",
        ("digest", Pt) => "Mais denúncias de abuso sobre a sua rede",
        ("reminder", En) => "Reminder: abuse case awaiting your answer",
        ("reminder", De) => "Erinnerung: Missbrauchsfall wartet auf Ihre Antwort",
        ("reminder", Es) => "Recordatorio: caso de abuso pendiente de su respuesta",
        ("reminder", Fr) => "Rappel : dossier d'abus en attente de votre réponse",
        ("reminder", Pt) => "Lembrete: caso de abuso aguarda a sua resposta",
        ("escalation", En) => "Escalated abuse case",
        ("escalation", De) => "Eskalierter Missbrauchsfall",
        ("escalation", Es) => "Caso de abuso escalado",
        ("escalation", Fr) => "Dossier d'abus escaladé",
        ("escalation", Pt) => "Caso de abuso escalado",
        ("case_closed", En) => "Abuse case closed",
        ("case_closed", De) => "Missbrauchsfall abgeschlossen",
        ("case_closed", Es) => "Caso de abuso cerrado",
        ("case_closed", Fr) => "Dossier d'abus clos",
        ("case_closed", Pt) => "Caso de abuso encerrado",
        (_, En) => "Investigation concluded",
        (_, De) => "Untersuchung abgeschlossen",
        (_, Es) => "Investigación concluida",
        (_, Fr) => "Enquête terminée",
        (_, Pt) => "Investigação concluída",
    }
}

/// What the subject of the ack after a completing follow-up says.
pub fn completed_subject(language: Language) -> &'static str {
    use Language::*;
    match language {
        En => "Report complete",
        De => "Meldung vollständig",
        Es => "Aviso completo",
        Fr => "Signalement complet",
        Pt => "Denúncia completa",
    }
}

/// The abuse type (and network subtype) as the reply names it.
pub fn label(language: Language, abuse_type: &str, subtype: Option<&str>) -> String {
    let name = |code: &str| -> String {
        let translated = match language {
            Language::En => None,
            Language::De => match code {
                "web_content" => Some("Web-Inhalt"),
                "email_abuse" => Some("E-Mail-Missbrauch"),
                "network_activity" => Some("Netzwerkaktivität"),
                "copyright" => Some("Urheberrecht"),
                "unknown" => Some("unbekannt"),
                "intrusion" => Some("Einbruch"),
                "dos" => Some("Denial of Service"),
                "port_scan" => Some("Portscan"),
                "brute_force" => Some("Brute Force"),
                "other" => Some("Sonstiges"),
                _ => None,
            },
            Language::Es => match code {
                "web_content" => Some("contenido web"),
                "email_abuse" => Some("abuso de correo"),
                "network_activity" => Some("actividad de red"),
                "copyright" => Some("derechos de autor"),
                "unknown" => Some("desconocido"),
                "intrusion" => Some("intrusión"),
                "dos" => Some("denegación de servicio"),
                "port_scan" => Some("escaneo de puertos"),
                "brute_force" => Some("fuerza bruta"),
                "other" => Some("otro"),
                _ => None,
            },
            Language::Fr => match code {
                "web_content" => Some("contenu web"),
                "email_abuse" => Some("abus de messagerie"),
                "network_activity" => Some("activité réseau"),
                "copyright" => Some("droit d'auteur"),
                "unknown" => Some("inconnu"),
                "intrusion" => Some("intrusion"),
                "dos" => Some("déni de service"),
                "port_scan" => Some("scan de ports"),
                "brute_force" => Some("force brute"),
                "other" => Some("autre"),
                _ => None,
            },
            Language::Pt => match code {
                "web_content" => Some("conteúdo web"),
                "email_abuse" => Some("abuso de email"),
                "network_activity" => Some("atividade de rede"),
                "copyright" => Some("direitos de autor"),
                "unknown" => Some("desconhecido"),
                "intrusion" => Some("intrusão"),
                "dos" => Some("negação de serviço"),
                "port_scan" => Some("varrimento de portas"),
                "brute_force" => Some("força bruta"),
                "other" => Some("outro"),
                _ => None,
            },
        };
        translated.map_or_else(|| code.replace('_', " "), str::to_owned)
    };
    // "other" tells a reporter nothing: the type alone is shown.
    match subtype.filter(|s| *s != "other") {
        Some(s) => format!("{}, {}", name(abuse_type), name(s)),
        None => name(abuse_type),
    }
}

/// The sentence an ack after a follow-up opens with.
pub fn follow_up_added(language: Language, report_id: i64) -> String {
    use Language::*;
    match language {
        En => format!("We have added your additional information to report #{report_id}; it now has what we need."),
        De => format!("Wir haben Ihre zusätzlichen Angaben zu Meldung #{report_id} hinzugefügt; damit ist sie vollständig."),
        Es => format!("Hemos añadido su información adicional al aviso #{report_id}; ya tiene lo que necesitamos."),
        Fr => format!("Nous avons ajouté vos informations complémentaires au signalement #{report_id} ; il est maintenant complet."),
        Pt => format!("Adicionámos as suas informações adicionais à denúncia #{report_id}; agora está completa."),
    }
}

/// How to send one missing piece of evidence (DESIGN.md), as a list item.
pub fn instruction(language: Language, missing: crate::model::Missing) -> &'static str {
    use Language::*;
    match (missing.as_str(), language) {
        ("url", En) => "- the address (URL) of the content, for example https://www.example.com/page",
        ("url", De) => "- die Adresse (URL) des Inhalts, zum Beispiel https://www.example.com/seite",
        ("url", Es) => "- la dirección (URL) del contenido, por ejemplo https://www.example.com/pagina",
        ("url", Fr) => "- l'adresse (URL) du contenu, par exemple https://www.example.com/page",
        ("url", Pt) => "- o endereço (URL) do conteúdo, por exemplo https://www.example.com/pagina",
        ("timestamp", En) => "- the position in the video where it appears, for example 01:23",
        ("timestamp", De) => "- die Stelle im Video, an der es zu sehen ist, zum Beispiel 01:23",
        ("timestamp", Es) => "- el momento del vídeo en que aparece, por ejemplo 01:23",
        ("timestamp", Fr) => "- le moment de la vidéo où cela apparaît, par exemple 01:23",
        ("timestamp", Pt) => "- o momento do vídeo em que aparece, por exemplo 01:23",
        ("full_headers", En) => {
            "- the offending email with its full headers (all Received: lines), as an\n  attached .eml file or pasted below your message"
        }
        ("full_headers", De) => {
            "- die beanstandete E-Mail mit allen Kopfzeilen (alle Received:-Zeilen), als\n  angehängte .eml-Datei oder unter Ihrer Nachricht eingefügt"
        }
        ("full_headers", Es) => {
            "- el correo denunciado con todas sus cabeceras (todas las líneas Received:),\n  como archivo .eml adjunto o pegado debajo de su mensaje"
        }
        ("full_headers", Fr) => {
            "- le message incriminé avec tous ses en-têtes (toutes les lignes Received:),\n  en pièce jointe .eml ou collé sous votre message"
        }
        ("full_headers", Pt) => {
            "- o email denunciado com todos os cabeçalhos (todas as linhas Received:),\n  como ficheiro .eml anexo ou colado abaixo da sua mensagem"
        }
        ("network_logs", En) => {
            "- log lines with source and target IP addresses, ports and timestamps, one\n  event per line, for example as CSV: IP address, date-time in ISO 8601,\n  network log line:\n  192.0.2.1,2026-01-31T12:34:56Z,sshd[123]: Failed password for root from 192.0.2.1 port 4242 ssh2"
        }
        ("network_logs", De) => {
            "- Logzeilen mit Quell- und Ziel-IP-Adressen, Ports und Zeitstempeln, ein\n  Ereignis pro Zeile, zum Beispiel als CSV: IP-Adresse, Datum und Uhrzeit\n  nach ISO 8601, Logzeile:\n  192.0.2.1,2026-01-31T12:34:56Z,sshd[123]: Failed password for root from 192.0.2.1 port 4242 ssh2"
        }
        ("network_logs", Es) => {
            "- líneas de registro con las direcciones IP de origen y destino, puertos y\n  fecha y hora, un evento por línea, por ejemplo en CSV: dirección IP,\n  fecha y hora ISO 8601, línea de registro:\n  192.0.2.1,2026-01-31T12:34:56Z,sshd[123]: Failed password for root from 192.0.2.1 port 4242 ssh2"
        }
        ("network_logs", Fr) => {
            "- des lignes de journal avec les adresses IP source et cible, les ports et\n  l'horodatage, un événement par ligne, par exemple en CSV : adresse IP,\n  date et heure ISO 8601, ligne de journal :\n  192.0.2.1,2026-01-31T12:34:56Z,sshd[123]: Failed password for root from 192.0.2.1 port 4242 ssh2"
        }
        ("network_logs", Pt) => {
            "- linhas de registo com os endereços IP de origem e destino, portas e data\n  e hora, um evento por linha, por exemplo em CSV: endereço IP, data e hora\n  ISO 8601, linha de registo:\n  192.0.2.1,2026-01-31T12:34:56Z,sshd[123]: Failed password for root from 192.0.2.1 port 4242 ssh2"
        }
        ("copyright_notice", En) => {
            "- a complete notice: the work, where it is infringed (URL or IP address and\n  time), your contact details, a statement of good faith, a statement that\n  the notice is accurate, and your signature"
        }
        ("copyright_notice", De) => {
            "- eine vollständige Mitteilung: das Werk, wo es verletzt wird (URL oder\n  IP-Adresse und Zeit), Ihre Kontaktdaten, eine Erklärung Ihres guten\n  Glaubens, eine Erklärung, dass die Angaben richtig sind, und Ihre Unterschrift"
        }
        ("copyright_notice", Es) => {
            "- una notificación completa: la obra, dónde se infringe (URL o dirección IP\n  y hora), sus datos de contacto, una declaración de buena fe, una\n  declaración de que la notificación es exacta y su firma"
        }
        ("copyright_notice", Fr) => {
            "- une notification complète : l'œuvre, où elle est contrefaite (URL ou\n  adresse IP et heure), vos coordonnées, une déclaration de bonne foi, une\n  déclaration d'exactitude de la notification et votre signature"
        }
        ("copyright_notice", Pt) => {
            "- uma notificação completa: a obra, onde é infringida (URL ou endereço IP\n  e hora), os seus contactos, uma declaração de boa-fé, uma declaração de\n  que a notificação é exata e a sua assinatura"
        }
        ("abuse_type", En) => {
            "- which kind of abuse this is: content at a web address, spam or abusive\n  email, network activity (intrusion, denial of service, port scan, brute\n  force) or a copyright infringement"
        }
        ("abuse_type", De) => {
            "- um welche Art von Missbrauch es geht: Inhalte unter einer Webadresse,\n  Spam oder missbräuchliche E-Mails, Netzwerkaktivität (Einbruch, Denial of\n  Service, Portscan, Brute Force) oder eine Urheberrechtsverletzung"
        }
        ("abuse_type", Es) => {
            "- de qué tipo de abuso se trata: contenido en una dirección web, spam o\n  correo abusivo, actividad de red (intrusión, denegación de servicio,\n  escaneo de puertos, fuerza bruta) o una infracción de derechos de autor"
        }
        ("abuse_type", Fr) => {
            "- de quel type d'abus il s'agit : contenu à une adresse web, spam ou\n  courriel abusif, activité réseau (intrusion, déni de service, scan de\n  ports, force brute) ou atteinte au droit d'auteur"
        }
        ("abuse_type", Pt) => {
            "- que tipo de abuso é: conteúdo num endereço web, spam ou email abusivo,\n  atividade de rede (intrusão, negação de serviço, varrimento de portas,\n  força bruta) ou uma violação de direitos de autor"
        }
        (_, En) => "- more details about the abuse",
        (_, De) => "- weitere Einzelheiten zum Missbrauch",
        (_, Es) => "- más detalles sobre el abuso",
        (_, Fr) => "- plus de détails sur l'abus",
        (_, Pt) => "- mais detalhes sobre o abuso",
    }
}

/// The line after a notice's listing when it lists only the first reports.
pub fn more_in_csv(language: Language, n: usize) -> String {
    match language {
        Language::En => format!("… and {n} more, in the attached CSV."),
        Language::De => format!("… und {n} weitere, in der angehängten CSV-Datei."),
        Language::Es => format!("… y {n} más, en el CSV adjunto."),
        Language::Fr => format!("… et {n} de plus, dans le CSV joint."),
        Language::Pt => format!("… e mais {n}, no CSV em anexo."),
    }
}

/// Why a case is escalated: it holds `events` reports (the policy's count).
pub fn escalated_by_count(language: Language, events: u64) -> String {
    match language {
        Language::En => format!("it holds {events} reports"),
        Language::De => format!("er umfasst {events} Meldungen"),
        Language::Es => format!("contiene {events} avisos"),
        Language::Fr => format!("il compte {events} signalements"),
        Language::Pt => format!("contém {events} denúncias"),
    }
}

/// Why a case is escalated: no answer `hours` after the first notice.
pub fn escalated_by_silence(language: Language, hours: i64) -> String {
    match language {
        Language::En => format!("no answer {hours} hours after the first notice"),
        Language::De => format!("keine Antwort {hours} Stunden nach der ersten Nachricht"),
        Language::Es => format!("sin respuesta {hours} horas después del primer aviso"),
        Language::Fr => format!("pas de réponse {hours} heures après le premier message"),
        Language::Pt => format!("sem resposta {hours} horas após a primeira notificação"),
    }
}

/// What stands where a time or a note is not there (`never`, `-`).
pub fn none_yet(language: Language) -> &'static str {
    match language {
        Language::En => "none yet",
        Language::De => "noch keine",
        Language::Es => "ninguna aún",
        Language::Fr => "aucune encore",
        Language::Pt => "nenhuma ainda",
    }
}

/// The statement of reasons a closed notice carries when the case was
/// decided (EU Digital Services Act, Art. 17): the restriction, its ground,
/// what it rests on, and the ways to contest it.
pub fn statement_of_reasons(
    language: Language,
    decided: crate::model::case::Decided,
    reports: u64,
) -> String {
    use crate::model::case::{Decision::*, Ground};
    let (decision, ground, rest) = match language {
        Language::En => (
            match decided.decision {
                Removed => "the content was removed",
                Disabled => "access to the content was disabled",
                Restricted => "the content's visibility was restricted",
                Suspended => "the service was suspended",
                NoAction => "no restriction was applied",
            },
            match decided.ground {
                Some(Ground::Illegal) => "because the content is illegal",
                Some(Ground::Terms) => {
                    "because the content is incompatible with our terms of service"
                }
                None => "",
            },
            format!(
                "This is our statement of reasons under Art. 17 of the EU Digital Services Act. \
                 The decision rests on {reports} notice(s) received about this case and was taken \
                 by a person. You may contest it by replying to this message; you may also turn \
                 to a certified out-of-court dispute settlement body (Art. 21) or to the courts."
            ),
        ),
        Language::De => (
            match decided.decision {
                Removed => "der Inhalt wurde entfernt",
                Disabled => "der Zugang zum Inhalt wurde gesperrt",
                Restricted => "die Sichtbarkeit des Inhalts wurde eingeschränkt",
                Suspended => "der Dienst wurde ausgesetzt",
                NoAction => "es wurde nichts eingeschränkt",
            },
            match decided.ground {
                Some(Ground::Illegal) => "weil der Inhalt rechtswidrig ist",
                Some(Ground::Terms) => "weil der Inhalt gegen unsere Nutzungsbedingungen verstößt",
                None => "",
            },
            format!(
                "Dies ist unsere Begründung nach Art. 17 des EU-Gesetzes über digitale Dienste. \
                 Die Entscheidung beruht auf {reports} Meldung(en) zu diesem Fall und wurde von \
                 einem Menschen getroffen. Sie können ihr durch eine Antwort auf diese Nachricht \
                 widersprechen; Sie können sich auch an eine zertifizierte außergerichtliche \
                 Streitbeilegungsstelle (Art. 21) oder an die Gerichte wenden."
            ),
        ),
        Language::Es => (
            match decided.decision {
                Removed => "el contenido se ha retirado",
                Disabled => "se ha bloqueado el acceso al contenido",
                Restricted => "se ha restringido la visibilidad del contenido",
                Suspended => "se ha suspendido el servicio",
                NoAction => "no se ha aplicado ninguna restricción",
            },
            match decided.ground {
                Some(Ground::Illegal) => "porque el contenido es ilícito",
                Some(Ground::Terms) => {
                    "porque el contenido es incompatible con nuestras condiciones"
                }
                None => "",
            },
            format!(
                "Esta es nuestra exposición de motivos conforme al art. 17 del Reglamento de \
                 Servicios Digitales de la UE. La decisión se basa en {reports} aviso(s) sobre \
                 este caso y la tomó una persona. Puede impugnarla respondiendo a este mensaje; \
                 también puede acudir a un órgano certificado de resolución extrajudicial de \
                 litigios (art. 21) o a los tribunales."
            ),
        ),
        Language::Fr => (
            match decided.decision {
                Removed => "le contenu a été retiré",
                Disabled => "l'accès au contenu a été bloqué",
                Restricted => "la visibilité du contenu a été restreinte",
                Suspended => "le service a été suspendu",
                NoAction => "aucune restriction n'a été appliquée",
            },
            match decided.ground {
                Some(Ground::Illegal) => "parce que le contenu est illicite",
                Some(Ground::Terms) => "parce que le contenu est contraire à nos conditions",
                None => "",
            },
            format!(
                "Ceci est notre exposé des motifs au titre de l'art. 17 du règlement européen sur \
                 les services numériques. La décision repose sur {reports} signalement(s) reçus \
                 pour ce dossier et a été prise par une personne. Vous pouvez la contester en \
                 répondant à ce message ; vous pouvez aussi saisir un organisme certifié de \
                 règlement extrajudiciaire des litiges (art. 21) ou les tribunaux."
            ),
        ),
        Language::Pt => (
            match decided.decision {
                Removed => "o conteúdo foi removido",
                Disabled => "o acesso ao conteúdo foi bloqueado",
                Restricted => "a visibilidade do conteúdo foi restringida",
                Suspended => "o serviço foi suspenso",
                NoAction => "não foi aplicada nenhuma restrição",
            },
            match decided.ground {
                Some(Ground::Illegal) => "porque o conteúdo é ilegal",
                Some(Ground::Terms) => "porque o conteúdo viola os nossos termos de serviço",
                None => "",
            },
            format!(
                "Esta é a nossa exposição de motivos nos termos do art. 17 do Regulamento dos \
                 Serviços Digitais da UE. A decisão baseia-se em {reports} denúncia(s) sobre \
                 este caso e foi tomada por uma pessoa. Pode contestá-la respondendo a esta \
                 mensagem; pode também recorrer a um organismo certificado de resolução \
                 extrajudicial de litígios (art. 21) ou aos tribunais."
            ),
        ),
    };
    let head = if ground.is_empty() {
        format!("{decision}.")
    } else {
        format!("{decision}, {ground}.")
    };
    let mut chars = head.chars();
    let head: String = chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    format!("{head}\n{rest}")
}
