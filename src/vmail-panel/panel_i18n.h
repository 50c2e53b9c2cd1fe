/* panel_i18n: the panel's words in English and Polish, and choosing between them. */
#ifndef VMAIL_PANEL_I18N_H
#define VMAIL_PANEL_I18N_H

#include <stddef.h>

enum panel_lang {
	PANEL_LANG_EN = 0,
	PANEL_LANG_PL,
	PANEL_LANG__COUNT,
};

/* X(id, english, polish): one row per message; the table in panel_i18n.c expands it. */
#define PANEL_MESSAGES(X) \
	X(M_TITLE, "Mail configuration", "Konfiguracja poczty") \
	X(M_LOGIN_HEADING, "Log in", "Logowanie") \
	X(M_LOGIN_INTRO, "Log in with your shell account to manage your aliases and mail accounts.", \
	  "Zaloguj się kontem shellowym, aby zarządzać aliasami i kontami pocztowymi.") \
	X(M_LOGIN, "Login", "Login") \
	X(M_PASSWORD, "Password", "Hasło") \
	X(M_LOGIN_BUTTON, "Log in", "Zaloguj się") \
	X(M_LOGIN_FAILED, "Wrong login or password, or too many attempts. Try again later.", \
	  "Nieprawidłowy login lub hasło albo zbyt wiele prób. Spróbuj ponownie później.") \
	X(M_LOGOUT, "Log out", "Wyloguj się") \
	X(M_LOGGED_OUT, "You have been logged out.", "Wylogowano.") \
	X(M_EXPIRED, "Your session has expired. Please log in again.", \
	  "Sesja wygasła. Zaloguj się ponownie.") \
	X(M_CSRF, "This form has expired or did not come from this page. Go back, reload the page and try again.", \
	  "Formularz wygasł lub nie pochodzi z tej strony. Wróć, odśwież stronę i spróbuj ponownie.") \
	X(M_UNAVAILABLE, "The service is temporarily unavailable. Please try again in a moment.", \
	  "Usługa jest chwilowo niedostępna. Spróbuj ponownie za chwilę.") \
	X(M_NOT_FOUND, "There is no such page.", "Nie ma takiej strony.") \
	X(M_BAD_REQUEST, "The request could not be understood.", "Nie udało się zrozumieć żądania.") \
	X(M_BACK, "Back to the overview", "Powrót do przeglądu") \
	X(M_ACCOUNT, "Your account", "Twoje konto") \
	X(M_SHELL_LOGIN, "Shell account", "Konto shellowe") \
	X(M_PRIMARY_ADDRESS, "Primary address", "Adres podstawowy") \
	X(M_MAIL_DOMAIN, "Mail domain (for free mail accounts)", "Domena poczty (dla darmowych kont)") \
	X(M_NONE_SET, "not set; ask the administrator", "nie ustawiona; zapytaj administratora") \
	X(M_DOMAINS, "Domains", "Domeny") \
	X(M_NO_DOMAINS, "No domains yet.", "Brak domen.") \
	X(M_DOMAIN, "Domain", "Domena") \
	X(M_KIND, "Kind", "Rodzaj") \
	X(M_STATE, "State", "Stan") \
	X(M_KIND_LOCAL, "local", "lokalna") \
	X(M_KIND_EXTERNAL, "external", "zewnętrzna") \
	X(M_KIND_PRIMARY, "primary", "podstawowa") \
	X(M_DSTATE_ACTIVE, "active", "aktywna") \
	X(M_DSTATE_PENDING_REG, "awaiting registration", "czeka na rejestrację") \
	X(M_DSTATE_PENDING_PROOF, "awaiting ownership proof", "czeka na potwierdzenie własności") \
	X(M_DSTATE_SUSPENDED, "suspended", "zawieszona") \
	X(M_VERIFY_TOKEN, "Proof of ownership: DNS TXT record", "Potwierdzenie własności: rekord DNS TXT") \
	X(M_DOMAIN_ALIAS_OF, "Alias domain: mirrors every address of", "Alias domeny: powiela każdy adres domeny") \
	X(M_STATE_ACTIVE, "active", "aktywne") \
	X(M_STATE_SUSPENDED, "suspended", "zawieszone") \
	X(M_DISK, "Disk space", "Miejsce na dysku") \
	X(M_DISK_USED, "Used %s of %s", "Zajęte %s z %s") \
	X(M_DISK_OVER, "Over the limit: mail to you is refused until you free some space.", \
	  "Przekroczony limit: poczta do Ciebie jest odrzucana, dopóki nie zwolnisz miejsca.") \
	X(M_DISK_ALLOCATED, "Allocated to free mail accounts: %s", "Przydzielone darmowym kontom: %s") \
	X(M_FILES, "Files", "Pliki") \
	X(M_OWN_MAILBOX, "Your mailbox", "Twoja skrzynka") \
	X(M_FREE_SPACE, "Free", "Wolne") \
	X(M_PART, "Part", "Część") \
	X(M_SIZE, "Size", "Rozmiar") \
	X(M_ALIASES, "Aliases", "Aliasy") \
	X(M_X_OF_Y, "%u of %u", "%u z %u") \
	X(M_ALIASES_NOTE, "Aliases set up by the administrator do not count and are shown read-only.", \
	  "Aliasy ustawione przez administratora nie są wliczane i są tylko do odczytu.") \
	X(M_NO_ALIASES, "No aliases yet.", "Brak aliasów.") \
	X(M_ADDRESS, "Address", "Adres") \
	X(M_DESTINATION, "Delivered to", "Dostarczane do") \
	X(M_ADMIN_ALIAS, "set up by the administrator", "ustawiony przez administratora") \
	X(M_ACTIONS, "Actions", "Działania") \
	X(M_CHANGE, "Change", "Zmień") \
	X(M_DELETE, "Delete", "Usuń") \
	X(M_ADD_ALIAS, "Add an alias", "Dodaj alias") \
	X(M_ALIAS_ADDRESS, "Alias address", "Adres aliasu") \
	X(M_TARGET, "Deliver to mailbox", "Dostarczaj do skrzynki") \
	X(M_ADD, "Add", "Dodaj") \
	X(M_ACCOUNTS, "Free mail accounts", "Darmowe konta pocztowe") \
	X(M_NO_ACCOUNTS, "No free mail accounts yet.", "Brak darmowych kont pocztowych.") \
	X(M_QUOTA, "Quota", "Limit") \
	X(M_USED, "Used", "Zajęte") \
	X(M_ADD_ACCOUNT, "Add a free mail account", "Dodaj darmowe konto pocztowe") \
	X(M_ACCOUNT_ADDRESS, "Mail account address", "Adres konta pocztowego") \
	X(M_QUOTA_HINT, "Quota (e.g. 100M or 1G)", "Limit (np. 100M lub 1G)") \
	X(M_NEW_PASSWORD, "New password", "Nowe hasło") \
	X(M_REPEAT_PASSWORD, "Repeat the new password", "Powtórz nowe hasło") \
	X(M_CURRENT_PASSWORD, "Current password", "Obecne hasło") \
	X(M_SET_PASSWORD, "Change password", "Zmień hasło") \
	X(M_RESIZE, "Change quota", "Zmień limit") \
	X(M_OWN_PASSWORD, "Your password", "Twoje hasło") \
	X(M_OWN_PASSWORD_NOTE, "This is the password of your shell account; it is also your mail password.", \
	  "To hasło konta shellowego; służy też do odbierania i wysyłania poczty.") \
	X(M_PW_MISMATCH, "The two new passwords differ.", "Nowe hasła różnią się.") \
	X(M_PW_LENGTH, "A password must be 8 to 256 characters long.", "Hasło musi mieć od 8 do 256 znaków.") \
	X(M_PW_WRONG, "The current password is wrong.", "Obecne hasło jest nieprawidłowe.") \
	X(M_BAD_SIZE, "Give the quota as a number with K, M or G, e.g. 100M.", \
	  "Podaj limit jako liczbę z K, M lub G, np. 100M.") \
	X(M_MISSING, "Fill in every field.", "Wypełnij wszystkie pola.") \
	X(M_DONE_ALIAS_ADD, "The alias was added.", "Dodano alias.") \
	X(M_DONE_ALIAS_SET, "The alias was changed.", "Zmieniono alias.") \
	X(M_DONE_ALIAS_DEL, "The alias was deleted.", "Usunięto alias.") \
	X(M_DONE_ACCOUNT_ADD, "The mail account was added.", "Dodano konto pocztowe.") \
	X(M_DONE_ACCOUNT_PASSWD, "The password of the mail account was changed.", "Zmieniono hasło konta pocztowego.") \
	X(M_DONE_ACCOUNT_RESIZE, "The quota of the mail account was changed.", "Zmieniono limit konta pocztowego.") \
	X(M_DONE_ACCOUNT_DEL, "The mail account was deleted.", "Usunięto konto pocztowe.") \
	X(M_DONE_PASSWD, "Your password was changed.", "Zmieniono Twoje hasło.") \
	X(M_REFUSED, "Refused", "Odmowa") \
	X(M_DETAILS, "Details", "Szczegóły") \
	X(M_R01, "You have used all your aliases.", "Wykorzystano już wszystkie aliasy.") \
	X(M_R02, "You have used all your free mail accounts.", "Wykorzystano już wszystkie darmowe konta pocztowe.") \
	X(M_R03, "Free mail accounts must be in your mail domain.", "Darmowe konta muszą być w Twojej domenie poczty.") \
	X(M_R04, "This domain already has all the free mail accounts it may have.", \
	  "Ta domena ma już największą dozwoloną liczbę darmowych kont.") \
	X(M_R05, "The quotas of your mail accounts would not fit in your disk limit.", \
	  "Limity kont pocztowych nie zmieszczą się w limicie dysku.") \
	X(M_R07, "This address is already in use.", "Ten adres jest już zajęty.") \
	X(M_R08, "This domain cannot be used (not yours, or not active yet).", \
	  "Tej domeny nie można użyć (nie należy do Ciebie lub nie jest jeszcze aktywna).") \
	X(M_R09, "The account is suspended.", "Konto jest zawieszone.") \
	X(M_E404, "No such address.", "Nie ma takiego adresu.") \
	X(M_E400, "The value is not valid.", "Nieprawidłowa wartość.") \
	X(M_E403, "You may not change this.", "Nie możesz tego zmienić.") \
	X(M_E409, "This conflicts with what already exists.", "To koliduje z istniejącymi danymi.") \
	X(M_PROGRAMS, "Mail programs", "Programy pocztowe") \
	X(M_PROGRAMS_LINK, "Settings for mail programs (Thunderbird, Outlook, phones)", \
	  "Ustawienia programów pocztowych (Thunderbird, Outlook, telefony)") \
	X(M_PROGRAMS_INTRO, "Most mail programs find these settings by themselves once you type your " \
	  "address and password. If yours asks for them, type them in as below.", \
	  "Większość programów pocztowych sama znajduje te ustawienia po wpisaniu adresu i hasła. " \
	  "Jeśli Twój o nie zapyta, wpisz je tak jak poniżej.") \
	X(M_PROGRAMS_ALIASES, "Aliases are not logins: you cannot log in with an alias address. Mail sent " \
	  "to an alias arrives in the mailbox it is delivered to; read it there.", \
	  "Aliasy nie są loginami: nie można się zalogować adresem aliasu. Poczta wysłana na alias " \
	  "trafia do skrzynki, do której jest dostarczany; tam ją odczytasz.") \
	X(M_PROGRAMS_NONE, "No mail servers are offered at the moment; ask the administrator.", \
	  "Obecnie nie są udostępniane żadne serwery poczty; zapytaj administratora.") \
	X(M_PROGRAMS_DNS, "DNS records for your domains", "Rekordy DNS Twoich domen") \
	X(M_PROGRAMS_DNS_NOTE, "Publish these records in each domain's DNS, so that mail programs find " \
	  "the servers from the address alone.", \
	  "Opublikuj te rekordy w DNS każdej domeny, aby programy pocztowe same znalazły serwery " \
	  "po adresie.") \
	X(M_PROGRAMS_DNS_MORE, "More records than fit on this page; the administrator has the full list.", \
	  "Rekordów jest więcej, niż mieści ta strona; pełną listę ma administrator.") \
	X(M_MAILBOX_OWN, "your own mailbox (shell account)", "Twoja skrzynka (konto shellowe)") \
	X(M_MAILBOX_ACCOUNT, "mail account", "konto pocztowe") \
	X(M_EMAIL_ADDRESS, "E-mail address", "Adres e-mail") \
	X(M_USERNAME, "Login (user name)", "Login (nazwa użytkownika)") \
	X(M_PASSWORD_OWN, "the password of your shell account", "hasło Twojego konta shellowego") \
	X(M_PASSWORD_ACCOUNT, "the password of this mail account", "hasło tego konta pocztowego") \
	X(M_AUTH, "Authentication", "Uwierzytelnianie") \
	X(M_AUTH_NORMAL, "normal password, the same for incoming and outgoing mail", \
	  "zwykłe hasło, to samo dla poczty przychodzącej i wychodzącej") \
	X(M_SERVICE, "Service", "Usługa") \
	X(M_SERVER, "Server", "Serwer") \
	X(M_PORT, "Port", "Port") \
	X(M_SECURITY, "Security", "Zabezpieczenie") \
	X(M_SEC_SSL, "SSL/TLS", "SSL/TLS") \
	X(M_SEC_STARTTLS, "STARTTLS", "STARTTLS") \
	X(M_PROTO_IMAP, "Incoming mail (IMAP)", "Poczta przychodząca (IMAP)") \
	X(M_PROTO_POP3, "Incoming mail (POP3)", "Poczta przychodząca (POP3)") \
	X(M_PROTO_SMTP, "Outgoing mail (SMTP)", "Poczta wychodząca (SMTP)") \
	X(M_APPLE_PROFILE, "Download the profile for Apple devices (iPhone, iPad, Mac)", \
	  "Pobierz profil dla urządzeń Apple (iPhone, iPad, Mac)") \
	X(M_APPLE_NOTE, \
	  "The profile holds no password: the device asks for it when the profile is installed.", \
	  "Profil nie zawiera hasła: urządzenie zapyta o nie podczas instalacji profilu.") \
	X(M_NO_PROFILE, "No profile can be made: the service offers no IMAP or no SMTP server.", \
	  "Nie można przygotować profilu: usługa nie udostępnia serwera IMAP lub SMTP.") \
	X(M_TOO_LARGE, "The form was too large and was not accepted. An out-of-office text may have " \
	  "at most 8 KiB.", \
	  "Formularz był za duży i nie został przyjęty. Treść autoodpowiedzi może mieć " \
	  "najwyżej 8 KiB.") \
	X(M_RULES, "Out-of-office and forwarding", "Autoodpowiedź i przekazywanie poczty") \
	X(M_RULES_NOT_YOURS, "This is not one of your mailboxes.", "To nie jest jedna z Twoich skrzynek.") \
	X(M_RULES_MAILBOX, "Mailbox", "Skrzynka") \
	X(M_VACATION, "Out-of-office reply", "Autoodpowiedź") \
	X(M_VACATION_NOTE, "While it is on, each sender gets the reply at most once in the number of " \
	  "days set below; mailing lists and automatic messages get none.", \
	  "Gdy jest włączona, każdy nadawca dostaje odpowiedź najwyżej raz na tyle dni, ile ustawiono " \
	  "niżej; listy dyskusyjne i wiadomości automatyczne nie dostają jej wcale.") \
	X(M_VAC_STATE_OFF, "The out-of-office reply is off.", "Autoodpowiedź jest wyłączona.") \
	X(M_VAC_STATE_ON, "The out-of-office reply is on, with no end date.", \
	  "Autoodpowiedź jest włączona, bez daty końcowej.") \
	X(M_VAC_STATE_FROM, "The out-of-office reply is on from %s, with no end date.", \
	  "Autoodpowiedź jest włączona od %s, bez daty końcowej.") \
	X(M_VAC_STATE_UNTIL, "The out-of-office reply is on until %s (the last day).", \
	  "Autoodpowiedź jest włączona do %s (ostatni dzień).") \
	X(M_VAC_STATE_RANGE, "The out-of-office reply is on from %s to %s (the last day).", \
	  "Autoodpowiedź jest włączona od %s do %s (ostatni dzień).") \
	X(M_VAC_SUBJECT, "Subject", "Temat") \
	X(M_VAC_BODY, "Text", "Treść") \
	X(M_VAC_START, "First day (empty: from now)", "Pierwszy dzień (puste: od teraz)") \
	X(M_VAC_END, "Last day (empty: until you switch it off)", "Ostatni dzień (puste: do wyłączenia)") \
	X(M_VAC_DAYS, "Reply to the same sender at most once every (days, 1–30)", \
	  "Odpowiadaj temu samemu nadawcy najwyżej raz na (dni, 1–30)") \
	X(M_VAC_FROM, "Reply from the address", "Odpowiadaj z adresu") \
	X(M_VAC_SAVE, "Save and switch on", "Zapisz i włącz") \
	X(M_VAC_OFF, "Switch off", "Wyłącz") \
	X(M_VAC_SUBJECT_LONG, "The subject may have at most 200 characters.", \
	  "Temat może mieć najwyżej 200 znaków.") \
	X(M_VAC_BODY_LONG, "The text may have at most 8 KiB (8192 bytes).", \
	  "Treść może mieć najwyżej 8 KiB (8192 bajty).") \
	X(M_VAC_BAD_DATE, "Give a date as year-month-day, e.g. 2026-07-01.", \
	  "Podaj datę w postaci rok-miesiąc-dzień, np. 2026-07-01.") \
	X(M_VAC_BAD_DAYS, "Give the days between replies as a whole number from 1 to 30.", \
	  "Podaj liczbę dni między odpowiedziami jako liczbę całkowitą od 1 do 30.") \
	X(M_ADDRESS_LONG, "An address may have at most 254 characters.", \
	  "Adres może mieć najwyżej 254 znaki.") \
	X(M_FORWARDING, "Forwarding", "Przekazywanie poczty") \
	X(M_FWD_NOTE, "Mail that arrives in this mailbox is sent on to these addresses.", \
	  "Poczta, która trafia do tej skrzynki, jest wysyłana dalej na te adresy.") \
	X(M_FWD_NONE, "This mailbox forwards no mail.", "Ta skrzynka nie przekazuje poczty.") \
	X(M_FWD_KEEPS, "A copy of each message stays in this mailbox.", \
	  "Kopia każdej wiadomości zostaje w tej skrzynce.") \
	X(M_FWD_NO_COPY, "No copy is kept: mail is only forwarded.", \
	  "Kopie nie są zachowywane: poczta jest tylko przekazywana dalej.") \
	X(M_FWD_TARGET, "Forward to", "Przekazuj na adres") \
	X(M_FWD_ADD, "Add a forwarding address", "Dodaj adres przekazywania") \
	X(M_FWD_KEEP, "Keep a copy in the mailbox", "Zachowuj kopię w skrzynce") \
	X(M_FWD_KEEP_ALL, "This choice applies to every forwarding address of the mailbox.", \
	  "Ten wybór dotyczy wszystkich adresów przekazywania tej skrzynki.") \
	X(M_FWD_KEEP_WARNING, "A mailbox that forwards without keeping a copy still has to have room: " \
	  "when it is full, its mail, and so the forwarding, waits until there is room again.", \
	  "Skrzynka, która przekazuje pocztę bez zachowywania kopii, nadal musi mieć wolne miejsce: " \
	  "gdy jest pełna, jej poczta, a więc i przekazywanie, czeka, aż miejsce się zwolni.") \
	X(M_REMOVE, "Remove", "Usuń") \
	X(M_REMOVE_TARGET, "Remove %s", "Usuń %s") \
	X(M_DONE_VACATION_SET, "The out-of-office reply was saved and is on.", \
	  "Zapisano autoodpowiedź; jest włączona.") \
	X(M_DONE_VACATION_OFF, "The out-of-office reply was switched off.", "Wyłączono autoodpowiedź.") \
	X(M_DONE_FORWARD_ADD, "The forwarding address was added.", "Dodano adres przekazywania.") \
	X(M_DONE_FORWARD_DEL, "The forwarding address was removed.", "Usunięto adres przekazywania.") \
	X(M_LANGUAGE, "Language", "Język") \
	X(M_SKIP, "Skip to the content", "Przejdź do treści")

#define PANEL_MSG_ENUM(id, en, pl) id,
enum panel_msg { PANEL_MESSAGES(PANEL_MSG_ENUM) PANEL_MSG__COUNT };
#undef PANEL_MSG_ENUM

/* panel_msg - the text of id in lang (UTF-8; may hold printf conversions as listed) */
const char *panel_msg(enum panel_lang lang, enum panel_msg id);
/* panel_lang_code - "en", "pl"; panel_lang_from_code - the reverse, -1 if unknown */
const char *panel_lang_code(enum panel_lang lang);
int panel_lang_from_code(const char *code);
/* panel_lang_name - the language's name in itself ("English", "Polski") */
const char *panel_lang_name(enum panel_lang lang);

/*
 * panel_lang_negotiate - the best of our languages for an Accept-Language
 * header (RFC 9110 §12.5.4: ranges with q-values; "pl-PL" matches pl; q=0
 * excludes); English when the header is NULL, empty, malformed or names none.
 */
enum panel_lang panel_lang_negotiate(const char *accept_language);

/*
 * panel_rule_msg - a translated summary for a database refusal, by SQLSTATE
 * (VMR01..VMR09, VM400..VM409); PANEL_MSG__COUNT when there is none.
 */
enum panel_msg panel_rule_msg(const char *sqlstate);

#endif
