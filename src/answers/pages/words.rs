//! What the built-in error pages say, in each language they speak: the reason and one plain
//! sentence (what happened, what the reader can do) for the statuses people meet most, a sentence
//! for any other 4xx and 5xx, and the labels of the details block. Which language a request gets
//! is `language`'s business; how a page is laid out, `themes`'.

use super::language::Language;

/// The statuses with a reason and a sentence of their own, in the order of [`Words`]' arrays.
pub(crate) const LISTED: [u16; 12] = [400, 401, 403, 404, 405, 408, 413, 429, 500, 502, 503, 504];

/// One language's words.
pub(crate) struct Words {
    /// The reasons of [`LISTED`], in its order.
    reasons: [&'static str; 12],
    /// The sentences of [`LISTED`], in its order.
    sentences: [&'static str; 12],
    /// For a 4xx that is not listed.
    client_error: &'static str,
    /// For a 5xx that is not listed.
    server_error: &'static str,
    /// Labels of the details block.
    pub(crate) request_id: &'static str,
    pub(crate) time: &'static str,
}

impl Words {
    pub(crate) fn of(language: Language) -> &'static Words {
        match language {
            Language::En => &EN,
            Language::De => &DE,
            Language::Fr => &FR,
            Language::Es => &ES,
            Language::Pt => &PT,
            Language::Ja => &JA,
            Language::Zh => &ZH,
        }
    }

    /// The reason of a listed status in this language; none for the others, whose reason is the
    /// English one of the status line.
    pub(crate) fn reason(&self, status: u16) -> Option<&'static str> {
        LISTED
            .iter()
            .position(|&s| s == status)
            .map(|i| self.reasons[i])
    }

    /// The sentence for `status`.
    pub(crate) fn sentence(&self, status: u16) -> &'static str {
        match LISTED.iter().position(|&s| s == status) {
            Some(i) => self.sentences[i],
            None if status >= 500 => self.server_error,
            None => self.client_error,
        }
    }
}

const EN: Words = Words {
    reasons: [
        "Bad Request",
        "Unauthorized",
        "Forbidden",
        "Not Found",
        "Method Not Allowed",
        "Request Timeout",
        "Content Too Large",
        "Too Many Requests",
        "Internal Server Error",
        "Bad Gateway",
        "Service Unavailable",
        "Gateway Timeout",
    ],
    sentences: [
        "The server could not understand the request; check the address and try again.",
        "You need to sign in to see this page; sign in and try again.",
        "You do not have permission to see this page; ask its owner if you think you should.",
        "The page you asked for is not here; check the address or go back to the home page.",
        "This page does not take this kind of request; go back and try again from a link.",
        "The request took too long to arrive; check your connection and try again.",
        "What you sent is larger than the server accepts; send something smaller.",
        "Too many requests came in a short time; wait a moment and try again.",
        "Something went wrong on the server; try again in a few minutes.",
        "The server behind this one gave an invalid answer; try again in a few minutes.",
        "The service is unavailable right now, perhaps for maintenance; try again in a few minutes.",
        "The server behind this one took too long to answer; try again in a few minutes.",
    ],
    client_error: "The request could not be answered; check the address and try again.",
    server_error: "The server could not answer the request; try again in a few minutes.",
    request_id: "Request ID",
    time: "Time",
};

const DE: Words = Words {
    reasons: [
        "Ungültige Anfrage",
        "Nicht autorisiert",
        "Zugriff verweigert",
        "Nicht gefunden",
        "Methode nicht erlaubt",
        "Zeitüberschreitung der Anfrage",
        "Inhalt zu groß",
        "Zu viele Anfragen",
        "Interner Serverfehler",
        "Fehlerhaftes Gateway",
        "Dienst nicht verfügbar",
        "Gateway-Zeitüberschreitung",
    ],
    sentences: [
        "Der Server konnte die Anfrage nicht verstehen; prüfen Sie die Adresse und versuchen Sie es erneut.",
        "Für diese Seite müssen Sie sich anmelden; melden Sie sich an und versuchen Sie es erneut.",
        "Sie haben keine Berechtigung für diese Seite; wenden Sie sich an ihren Betreiber, wenn Sie Zugriff haben sollten.",
        "Die angeforderte Seite gibt es hier nicht; prüfen Sie die Adresse oder gehen Sie zur Startseite.",
        "Diese Seite nimmt diese Art von Anfrage nicht an; gehen Sie zurück und versuchen Sie es über einen Link.",
        "Die Anfrage kam nicht rechtzeitig an; prüfen Sie Ihre Verbindung und versuchen Sie es erneut.",
        "Die gesendeten Daten sind größer, als der Server annimmt; senden Sie weniger Daten.",
        "In kurzer Zeit kamen zu viele Anfragen; warten Sie einen Moment und versuchen Sie es erneut.",
        "Auf dem Server ist ein Fehler aufgetreten; versuchen Sie es in ein paar Minuten erneut.",
        "Der dahinterliegende Server hat eine ungültige Antwort gegeben; versuchen Sie es in ein paar Minuten erneut.",
        "Der Dienst ist gerade nicht verfügbar, vielleicht wegen Wartungsarbeiten; versuchen Sie es in ein paar Minuten erneut.",
        "Der dahinterliegende Server hat zu lange für eine Antwort gebraucht; versuchen Sie es in ein paar Minuten erneut.",
    ],
    client_error: "Die Anfrage konnte nicht beantwortet werden; prüfen Sie die Adresse und versuchen Sie es erneut.",
    server_error: "Der Server konnte die Anfrage nicht beantworten; versuchen Sie es in ein paar Minuten erneut.",
    request_id: "Anfrage-ID",
    time: "Zeit",
};

// French sets a no-break space (U+00A0) before a semicolon.
const FR: Words = Words {
    reasons: [
        "Requête incorrecte",
        "Non autorisé",
        "Accès interdit",
        "Page introuvable",
        "Méthode non autorisée",
        "Délai de requête dépassé",
        "Contenu trop volumineux",
        "Trop de requêtes",
        "Erreur interne du serveur",
        "Passerelle incorrecte",
        "Service indisponible",
        "Délai de passerelle dépassé",
    ],
    sentences: [
        "Le serveur n’a pas compris la requête\u{a0}; vérifiez l’adresse et réessayez.",
        "Cette page demande une connexion\u{a0}; connectez-vous et réessayez.",
        "Vous n’avez pas l’autorisation de voir cette page\u{a0}; contactez son responsable si vous pensez devoir y accéder.",
        "La page demandée n’existe pas ici\u{a0}; vérifiez l’adresse ou revenez à la page d’accueil.",
        "Cette page n’accepte pas ce type de requête\u{a0}; revenez en arrière et passez par un lien.",
        "La requête a mis trop de temps à arriver\u{a0}; vérifiez votre connexion et réessayez.",
        "Les données envoyées dépassent la taille acceptée par le serveur\u{a0}; envoyez moins de données.",
        "Trop de requêtes sont arrivées en peu de temps\u{a0}; patientez un instant et réessayez.",
        "Une erreur s’est produite sur le serveur\u{a0}; réessayez dans quelques minutes.",
        "Le serveur situé derrière celui-ci a donné une réponse invalide\u{a0}; réessayez dans quelques minutes.",
        "Le service est indisponible pour le moment, peut-être pour maintenance\u{a0}; réessayez dans quelques minutes.",
        "Le serveur situé derrière celui-ci a mis trop de temps à répondre\u{a0}; réessayez dans quelques minutes.",
    ],
    client_error: "La requête n’a pas pu aboutir\u{a0}; vérifiez l’adresse et réessayez.",
    server_error: "Le serveur n’a pas pu répondre à la requête\u{a0}; réessayez dans quelques minutes.",
    request_id: "Identifiant de requête",
    time: "Heure",
};

const ES: Words = Words {
    reasons: [
        "Solicitud incorrecta",
        "No autorizado",
        "Prohibido",
        "No encontrado",
        "Método no permitido",
        "Tiempo de espera agotado",
        "Contenido demasiado grande",
        "Demasiadas solicitudes",
        "Error interno del servidor",
        "Puerta de enlace incorrecta",
        "Servicio no disponible",
        "Tiempo de espera de la puerta de enlace agotado",
    ],
    sentences: [
        "El servidor no pudo entender la solicitud; revise la dirección e inténtelo de nuevo.",
        "Debe iniciar sesión para ver esta página; inicie sesión e inténtelo de nuevo.",
        "No tiene permiso para ver esta página; consulte a su responsable si cree que debería tenerlo.",
        "La página que busca no está aquí; revise la dirección o vuelva a la página de inicio.",
        "Esta página no acepta este tipo de solicitud; vuelva atrás e inténtelo desde un enlace.",
        "La solicitud tardó demasiado en llegar; revise su conexión e inténtelo de nuevo.",
        "Lo que envió supera el tamaño que acepta el servidor; envíe algo más pequeño.",
        "Llegaron demasiadas solicitudes en poco tiempo; espere un momento e inténtelo de nuevo.",
        "Algo salió mal en el servidor; inténtelo de nuevo en unos minutos.",
        "El servidor que está detrás de este dio una respuesta no válida; inténtelo de nuevo en unos minutos.",
        "El servicio no está disponible ahora, quizá por mantenimiento; inténtelo de nuevo en unos minutos.",
        "El servidor que está detrás de este tardó demasiado en responder; inténtelo de nuevo en unos minutos.",
    ],
    client_error: "No se pudo atender la solicitud; revise la dirección e inténtelo de nuevo.",
    server_error: "El servidor no pudo responder a la solicitud; inténtelo de nuevo en unos minutos.",
    request_id: "ID de solicitud",
    time: "Hora",
};

// Words that Brazil and Portugal share, where they differ (`conexão`, `solicitação`).
const PT: Words = Words {
    reasons: [
        "Solicitação inválida",
        "Não autorizado",
        "Proibido",
        "Não encontrado",
        "Método não permitido",
        "Tempo de solicitação esgotado",
        "Conteúdo grande demais",
        "Solicitações em excesso",
        "Erro interno do servidor",
        "Gateway inválido",
        "Serviço indisponível",
        "Tempo esgotado no gateway",
    ],
    sentences: [
        "O servidor não conseguiu entender a solicitação; verifique o endereço e tente novamente.",
        "É preciso iniciar sessão para ver esta página; inicie sessão e tente novamente.",
        "Não tem permissão para ver esta página; fale com o responsável se acha que deveria ter acesso.",
        "A página pedida não está aqui; verifique o endereço ou volte à página inicial.",
        "Esta página não aceita este tipo de solicitação; volte e tente novamente a partir de um link.",
        "A solicitação demorou demais a chegar; verifique a sua conexão e tente novamente.",
        "O que foi enviado excede o limite do servidor; envie algo menor.",
        "Chegaram solicitações demais em pouco tempo; aguarde um momento e tente novamente.",
        "Ocorreu um erro no servidor; tente novamente dentro de alguns minutos.",
        "O servidor por trás deste deu uma resposta inválida; tente novamente dentro de alguns minutos.",
        "O serviço está indisponível no momento, talvez em manutenção; tente novamente dentro de alguns minutos.",
        "O servidor por trás deste demorou demais a responder; tente novamente dentro de alguns minutos.",
    ],
    client_error: "Não foi possível atender a solicitação; verifique o endereço e tente novamente.",
    server_error: "O servidor não conseguiu responder à solicitação; tente novamente dentro de alguns minutos.",
    request_id: "ID da solicitação",
    time: "Hora",
};

const JA: Words = Words {
    reasons: [
        "不正なリクエスト",
        "認証が必要です",
        "アクセスが禁止されています",
        "ページが見つかりません",
        "許可されていないメソッド",
        "リクエストタイムアウト",
        "コンテンツが大きすぎます",
        "リクエストが多すぎます",
        "サーバー内部エラー",
        "不正なゲートウェイ",
        "サービス利用不可",
        "ゲートウェイタイムアウト",
    ],
    sentences: [
        "サーバーがリクエストを理解できませんでした。アドレスを確認して、もう一度お試しください。",
        "このページを見るにはサインインが必要です。サインインしてから、もう一度お試しください。",
        "このページを見る権限がありません。必要な場合は管理者にお問い合わせください。",
        "お探しのページはここにはありません。アドレスを確認するか、トップページに戻ってください。",
        "このページはこの種類のリクエストを受け付けていません。前のページに戻り、リンクからお試しください。",
        "リクエストの到着に時間がかかりすぎました。接続を確認して、もう一度お試しください。",
        "送信されたデータがサーバーの上限を超えています。小さくしてから送信してください。",
        "短時間に多くのリクエストが届きました。しばらく待ってから、もう一度お試しください。",
        "サーバーで問題が発生しました。数分後にもう一度お試しください。",
        "背後のサーバーから不正な応答がありました。数分後にもう一度お試しください。",
        "サービスは現在ご利用いただけません（メンテナンス中の可能性があります）。数分後にもう一度お試しください。",
        "背後のサーバーの応答に時間がかかりすぎました。数分後にもう一度お試しください。",
    ],
    client_error: "リクエストに応答できませんでした。アドレスを確認して、もう一度お試しください。",
    server_error: "サーバーがリクエストに応答できませんでした。数分後にもう一度お試しください。",
    request_id: "リクエストID",
    time: "時刻",
};

// Simplified characters.
const ZH: Words = Words {
    reasons: [
        "错误的请求",
        "未授权",
        "禁止访问",
        "页面未找到",
        "方法不被允许",
        "请求超时",
        "内容过大",
        "请求过多",
        "服务器内部错误",
        "网关错误",
        "服务不可用",
        "网关超时",
    ],
    sentences: [
        "服务器无法理解该请求，请检查地址后重试。",
        "查看此页面需要登录，请登录后重试。",
        "您没有查看此页面的权限，如有需要请联系管理员。",
        "您要找的页面不在这里，请检查地址或返回首页。",
        "此页面不接受这种请求，请返回并通过链接重试。",
        "请求到达用时过长，请检查网络连接后重试。",
        "发送的数据超过了服务器允许的大小，请减小后再发送。",
        "短时间内收到的请求过多，请稍等片刻后重试。",
        "服务器出现了问题，请几分钟后重试。",
        "后端服务器返回了无效的响应，请几分钟后重试。",
        "服务暂时不可用，可能正在维护，请几分钟后重试。",
        "后端服务器响应时间过长，请几分钟后重试。",
    ],
    client_error: "无法处理该请求，请检查地址后重试。",
    server_error: "服务器无法响应该请求，请几分钟后重试。",
    request_id: "请求 ID",
    time: "时间",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_says_something_of_its_own_for_every_listed_status() {
        for language in Language::ALL {
            let words = Words::of(language);
            for status in LISTED {
                let (reason, sentence) = (words.reason(status), words.sentence(status));
                assert!(
                    reason.is_some_and(|r| !r.is_empty()),
                    "{language:?} {status}"
                );
                assert!(sentence.chars().count() > 10, "{language:?} {status}");
                if language != Language::En {
                    assert_ne!(sentence, EN.sentence(status), "{language:?} {status}");
                }
            }
            assert_eq!(words.reason(418), None);
            assert_eq!(words.sentence(418), words.client_error);
            assert_eq!(words.sentence(599), words.server_error);
        }
    }

    #[test]
    fn the_english_reasons_are_the_status_lines() {
        for status in LISTED {
            assert_eq!(
                EN.reason(status),
                Some(crate::http::status::reason_phrase(status))
            );
        }
    }
}
