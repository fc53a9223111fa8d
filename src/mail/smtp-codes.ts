/**
 * Table SMTPERRORCODE of the volet Transmission (error-codes.md): ERR-5 of ZAM^Z02 when a mail could
 * not be delivered. Labels shortened from the volet's; the codes are the SMTP reply codes, plus 101
 * and 111 for a server that cannot be reached.
 */
export const SMTP_ERROR_LABEL: Record<number, string> = {
  101: "Le serveur n'arrive pas à se connecter",
  111: "Connexion refusée ou impossibilité d'ouvrir un flux SMTP",
  251: "Le compte du destinataire n'est pas sur le serveur actuel, l'envoi est relayé",
  252: "Le serveur ne peut pas vérifier l'utilisateur",
  420: 'Problème de connexion de temporisation',
  421: 'Service indisponible (problème de connexion)',
  422: 'La boîte aux lettres du destinataire a dépassé sa limite de stockage',
  431: 'Espace disque ou mémoire insuffisant',
  432: 'Mot de passe de transition nécessaire',
  441: 'Le serveur du destinataire ne répond pas',
  442: 'La connexion a été interrompue pendant la transmission',
  450: 'Action non effectuée : boîte aux lettres non disponible',
  451: 'Action arrêtée : erreur de traitement',
  452: 'Action non effectuée : manque de ressources système',
  500: 'Erreur de syntaxe, commande non reconnue',
  501: 'Erreur de syntaxe dans les paramètres ou arguments',
  502: 'Commande non implémentée',
  503: 'Mauvaise séquence de commandes',
  504: 'Paramètre de commande non implémenté',
  510: 'Mauvaise adresse courriel',
  512: 'Erreur DNS : le serveur du domaine du destinataire est introuvable',
  513: "Type d'adresse incorrect",
  523: 'La taille du message dépasse les limites du serveur destinataire',
  530: "L'authentification est requise",
  541: "L'adresse du destinataire a rejeté le message",
  550: 'Action non effectuée : boîte aux lettres non disponible',
  551: 'Relais refusé : destinataire non hébergé localement',
  552: 'Action abandonnée : allocation de stockage dépassée',
  553: 'Nom de boîte aux lettres non valide',
  554: "L'envoi a échoué (erreur permanente)",
};

/**
 * The SMTPERRORCODE of a failure: the SMTP reply code when there is one, else from the enhanced
 * status (RFC 3463: 5.x.x permanent -> 550, 4.x.x -> 450), else the connection failure codes.
 */
export function smtpErrorCode(f: {
  responseCode?: number;
  status?: string;
  network?: 'refused' | 'unreachable';
}): number {
  if (f.responseCode && f.responseCode >= 200 && f.responseCode < 600) return f.responseCode;
  if (f.status?.startsWith('5.')) return 550;
  if (f.status?.startsWith('4.')) return 450;
  return f.network === 'refused' ? 111 : 101;
}

export function smtpErrorLabel(code: number): string {
  return SMTP_ERROR_LABEL[code] ?? (code >= 500 ? SMTP_ERROR_LABEL[554]! : SMTP_ERROR_LABEL[451]!);
}
