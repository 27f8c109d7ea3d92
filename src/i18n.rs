//! The shopper's words, in the languages of Klarna's markets: English, German, Swedish,
//! Norwegian, Finnish, Danish, Dutch, French, Spanish, Italian, Polish, Czech, Portuguese
//! (as in Portugal), Greek, Hungarian, Romanian and Slovak, chosen from the widget's
//! locale (`de-AT` → German, `it-CH` → Italian, `nb-NO`/`no-NO`/`nn-NO` → Norwegian;
//! anything else → English).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    De,
    Sv,
    Nb,
    Fi,
    Da,
    Nl,
    Fr,
    Es,
    It,
    Pl,
    Cs,
    Pt,
    El,
    Hu,
    Ro,
    Sk,
}

impl Lang {
    /// Every language, in the order of [`t`]'s columns.
    pub const ALL: [Lang; 17] = [
        Self::En,
        Self::De,
        Self::Sv,
        Self::Nb,
        Self::Fi,
        Self::Da,
        Self::Nl,
        Self::Fr,
        Self::Es,
        Self::It,
        Self::Pl,
        Self::Cs,
        Self::Pt,
        Self::El,
        Self::Hu,
        Self::Ro,
        Self::Sk,
    ];

    pub fn from_locale(locale: &str) -> Self {
        let lang = locale
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match lang.as_str() {
            "de" => Self::De,
            "sv" => Self::Sv,
            "nb" | "no" | "nn" => Self::Nb,
            "fi" => Self::Fi,
            "da" => Self::Da,
            "nl" => Self::Nl,
            "fr" => Self::Fr,
            "es" => Self::Es,
            "it" => Self::It,
            "pl" => Self::Pl,
            "cs" => Self::Cs,
            "pt" => Self::Pt,
            "el" => Self::El,
            "hu" => Self::Hu,
            "ro" => Self::Ro,
            "sk" => Self::Sk,
            _ => Self::En,
        }
    }

    /// The BCP 47 tag for the `lang` attribute.
    pub fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::De => "de",
            Self::Sv => "sv",
            Self::Nb => "nb",
            Self::Fi => "fi",
            Self::Da => "da",
            Self::Nl => "nl",
            Self::Fr => "fr",
            Self::Es => "es",
            Self::It => "it",
            Self::Pl => "pl",
            Self::Cs => "cs",
            Self::Pt => "pt",
            Self::El => "el",
            Self::Hu => "hu",
            Self::Ro => "ro",
            Self::Sk => "sk",
        }
    }
}

/// Every text the widget shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    Loading,
    Pay,
    OpenModal,
    DialogTitle,
    Close,
    Choose,
    Waiting,
    ConfirmIntro,
    Confirm,
    Placing,
    Authorized,
    Pending,
    Declined,
    CategoryUnavailable,
    Unavailable,
    InvalidFields,
    CartChanged,
    Retry,
    Reload,
    ErrorGeneric,
    ErrorSdkLoad,
    ErrorTimeout,
    ErrorNetwork,
    ErrorOrder,
    /// The order's currency and billing country are not a Klarna market.
    ErrorMarket,
    ErrorExpired,
    Crashed,
    FieldEmail,
    FieldPhone,
    FieldName,
    FieldStreet,
    FieldPostalCode,
    FieldCity,
    FieldCountry,
    FieldBirthDate,
    FieldNationalId,
    FieldOther,
}

impl Text {
    /// Every text, in declaration order. A new variant fails to compile in the tests'
    /// `index` until it is numbered there; give it the next number, list it here as well,
    /// and give it words in every language of [`TEXTS`] (the widget does not compile
    /// until each lists it).
    pub const ALL: [Text; 37] = [
        Self::Loading,
        Self::Pay,
        Self::OpenModal,
        Self::DialogTitle,
        Self::Close,
        Self::Choose,
        Self::Waiting,
        Self::ConfirmIntro,
        Self::Confirm,
        Self::Placing,
        Self::Authorized,
        Self::Pending,
        Self::Declined,
        Self::CategoryUnavailable,
        Self::Unavailable,
        Self::InvalidFields,
        Self::CartChanged,
        Self::Retry,
        Self::Reload,
        Self::ErrorGeneric,
        Self::ErrorSdkLoad,
        Self::ErrorTimeout,
        Self::ErrorNetwork,
        Self::ErrorOrder,
        Self::ErrorMarket,
        Self::ErrorExpired,
        Self::Crashed,
        Self::FieldEmail,
        Self::FieldPhone,
        Self::FieldName,
        Self::FieldStreet,
        Self::FieldPostalCode,
        Self::FieldCity,
        Self::FieldCountry,
        Self::FieldBirthDate,
        Self::FieldNationalId,
        Self::FieldOther,
    ];
}

/// One language's texts: every [`Text`] by name, in [`Text::ALL`]'s order — checked when
/// the widget compiles — joined into one string that [`t`] splits.
///
/// The layout is for the bundle's size: a language's words side by side compress better
/// than a table of every language's word for each text, and one string per language
/// needs no table of 37 × 17 pointers (2.7 KB gzip less than that table, measured).
macro_rules! texts {
    ($($text:ident: $words:literal,)*) => {{
        const _: () = {
            let listed = [$(Text::$text as usize),*];
            assert!(listed.len() == Text::ALL.len(), "a language must list every text");
            let mut i = 0;
            while i < listed.len() {
                assert!(listed[i] == i, "a language must list its texts in Text::ALL's order");
                i += 1;
            }
        };
        concat!($($words, "\u{1f}"),*)
    }};
}

/// Every language's texts, in [`Lang::ALL`]'s order.
const TEXTS: [&str; 17] = [
    // English
    texts! {
        Loading: "Loading Klarna…",
        Pay: "Pay with Klarna",
        OpenModal: "Pay with Klarna",
        DialogTitle: "Pay with Klarna",
        Close: "Close",
        Choose: "Choose how to pay",
        Waiting: "Waiting for Klarna…",
        ConfirmIntro: "Klarna approved your purchase. Confirm it to complete your order.",
        Confirm: "Confirm purchase",
        Placing: "Confirming your payment…",
        Authorized: "Thank you! Your payment with Klarna is confirmed.",
        Pending: "Thank you! Klarna is reviewing your purchase; you will hear from us soon.",
        Declined: "Klarna could not approve this purchase. Please choose another payment method.",
        CategoryUnavailable: "This Klarna option is not available for this purchase. Please choose another.",
        Unavailable: "Klarna is not available for this purchase. Please choose another payment method.",
        InvalidFields: "Please check these details",
        CartChanged: "Your cart changed. Please check the new total and pay again.",
        Retry: "Try again",
        Reload: "Reload the page",
        ErrorGeneric: "Something went wrong with Klarna.",
        ErrorSdkLoad: "Klarna could not be loaded. Check your connection and try again.",
        ErrorTimeout: "Klarna is taking too long to answer.",
        ErrorNetwork: "The payment service could not be reached.",
        ErrorOrder: "This order cannot be paid with Klarna. Please contact the shop.",
        ErrorMarket: "Klarna does not take this currency in your billing country. Please choose another payment method.",
        ErrorExpired: "Your Klarna approval expired. Please pay again.",
        Crashed: "The Klarna payment form stopped working.",
        FieldEmail: "e-mail address",
        FieldPhone: "phone number",
        FieldName: "name",
        FieldStreet: "street address",
        FieldPostalCode: "postal code",
        FieldCity: "city",
        FieldCountry: "country",
        FieldBirthDate: "date of birth",
        FieldNationalId: "national identity number",
        FieldOther: "other details",
    },
    // German
    texts! {
        Loading: "Klarna wird geladen …",
        Pay: "Mit Klarna bezahlen",
        OpenModal: "Mit Klarna bezahlen",
        DialogTitle: "Mit Klarna bezahlen",
        Close: "Schließen",
        Choose: "Wähle, wie du bezahlen möchtest",
        Waiting: "Warten auf Klarna …",
        ConfirmIntro: "Klarna hat deinen Kauf genehmigt. Bestätige ihn, um die Bestellung abzuschließen.",
        Confirm: "Kauf bestätigen",
        Placing: "Deine Zahlung wird bestätigt …",
        Authorized: "Vielen Dank! Deine Zahlung mit Klarna ist bestätigt.",
        Pending: "Vielen Dank! Klarna prüft deinen Kauf; du hörst bald von uns.",
        Declined: "Klarna konnte diesen Kauf nicht genehmigen. Bitte wähle eine andere Zahlungsart.",
        CategoryUnavailable: "Diese Klarna-Option ist für diesen Kauf nicht verfügbar. Bitte wähle eine andere.",
        Unavailable: "Klarna ist für diesen Kauf nicht verfügbar. Bitte wähle eine andere Zahlungsart.",
        InvalidFields: "Bitte prüfe diese Angaben",
        CartChanged: "Dein Warenkorb hat sich geändert. Bitte prüfe den neuen Betrag und bezahle erneut.",
        Retry: "Erneut versuchen",
        Reload: "Seite neu laden",
        ErrorGeneric: "Bei Klarna ist etwas schiefgelaufen.",
        ErrorSdkLoad: "Klarna konnte nicht geladen werden. Prüfe deine Verbindung und versuche es erneut.",
        ErrorTimeout: "Klarna antwortet nicht rechtzeitig.",
        ErrorNetwork: "Der Zahlungsdienst ist nicht erreichbar.",
        ErrorOrder: "Diese Bestellung kann nicht mit Klarna bezahlt werden. Bitte wende dich an den Shop.",
        ErrorMarket: "Klarna akzeptiert diese Währung in deinem Rechnungsland nicht. Bitte wähle eine andere Zahlungsart.",
        ErrorExpired: "Deine Klarna-Genehmigung ist abgelaufen. Bitte bezahle erneut.",
        Crashed: "Das Klarna-Zahlungsformular funktioniert nicht mehr.",
        FieldEmail: "E-Mail-Adresse",
        FieldPhone: "Telefonnummer",
        FieldName: "Name",
        FieldStreet: "Straße und Hausnummer",
        FieldPostalCode: "Postleitzahl",
        FieldCity: "Ort",
        FieldCountry: "Land",
        FieldBirthDate: "Geburtsdatum",
        FieldNationalId: "Ausweisnummer",
        FieldOther: "weitere Angaben",
    },
    // Swedish
    texts! {
        Loading: "Laddar Klarna…",
        Pay: "Betala med Klarna",
        OpenModal: "Betala med Klarna",
        DialogTitle: "Betala med Klarna",
        Close: "Stäng",
        Choose: "Välj hur du vill betala",
        Waiting: "Väntar på Klarna…",
        ConfirmIntro: "Klarna har godkänt ditt köp. Bekräfta det för att slutföra beställningen.",
        Confirm: "Bekräfta köpet",
        Placing: "Din betalning bekräftas…",
        Authorized: "Tack! Din betalning med Klarna är bekräftad.",
        Pending: "Tack! Klarna granskar ditt köp; du hör snart av oss.",
        Declined: "Klarna kunde inte godkänna köpet. Välj ett annat betalsätt.",
        CategoryUnavailable: "Det här Klarna-alternativet är inte tillgängligt för köpet. Välj ett annat.",
        Unavailable: "Klarna är inte tillgängligt för det här köpet. Välj ett annat betalsätt.",
        InvalidFields: "Kontrollera de här uppgifterna",
        CartChanged: "Din varukorg har ändrats. Kontrollera den nya summan och betala igen.",
        Retry: "Försök igen",
        Reload: "Ladda om sidan",
        ErrorGeneric: "Något gick fel med Klarna.",
        ErrorSdkLoad: "Klarna kunde inte laddas. Kontrollera anslutningen och försök igen.",
        ErrorTimeout: "Klarna svarar inte i tid.",
        ErrorNetwork: "Betaltjänsten kunde inte nås.",
        ErrorOrder: "Beställningen kan inte betalas med Klarna. Kontakta butiken.",
        ErrorMarket: "Klarna tar inte emot den här valutan i ditt faktureringsland. Välj ett annat betalsätt.",
        ErrorExpired: "Ditt Klarna-godkännande har gått ut. Betala igen.",
        Crashed: "Klarnas betalformulär slutade fungera.",
        FieldEmail: "e-postadress",
        FieldPhone: "telefonnummer",
        FieldName: "namn",
        FieldStreet: "gatuadress",
        FieldPostalCode: "postnummer",
        FieldCity: "ort",
        FieldCountry: "land",
        FieldBirthDate: "födelsedatum",
        FieldNationalId: "personnummer",
        FieldOther: "övriga uppgifter",
    },
    // Norwegian (Bokmål)
    texts! {
        Loading: "Laster inn Klarna …",
        Pay: "Betal med Klarna",
        OpenModal: "Betal med Klarna",
        DialogTitle: "Betal med Klarna",
        Close: "Lukk",
        Choose: "Velg hvordan du vil betale",
        Waiting: "Venter på Klarna …",
        ConfirmIntro: "Klarna har godkjent kjøpet. Bekreft det for å fullføre bestillingen.",
        Confirm: "Bekreft kjøpet",
        Placing: "Betalingen bekreftes …",
        Authorized: "Takk! Betalingen med Klarna er bekreftet.",
        Pending: "Takk! Klarna vurderer kjøpet; du hører snart fra oss.",
        Declined: "Klarna kunne ikke godkjenne kjøpet. Velg en annen betalingsmåte.",
        CategoryUnavailable: "Dette Klarna-alternativet er ikke tilgjengelig for kjøpet. Velg et annet.",
        Unavailable: "Klarna er ikke tilgjengelig for dette kjøpet. Velg en annen betalingsmåte.",
        InvalidFields: "Kontroller disse opplysningene",
        CartChanged: "Handlekurven er endret. Kontroller den nye summen og betal på nytt.",
        Retry: "Prøv igjen",
        Reload: "Last inn siden på nytt",
        ErrorGeneric: "Noe gikk galt med Klarna.",
        ErrorSdkLoad: "Klarna kunne ikke lastes inn. Sjekk tilkoblingen og prøv igjen.",
        ErrorTimeout: "Klarna bruker for lang tid på å svare.",
        ErrorNetwork: "Betalingstjenesten kunne ikke nås.",
        ErrorOrder: "Bestillingen kan ikke betales med Klarna. Kontakt butikken.",
        ErrorMarket: "Klarna tar ikke imot denne valutaen i fakturalandet ditt. Velg en annen betalingsmåte.",
        ErrorExpired: "Klarna-godkjenningen er utløpt. Betal på nytt.",
        Crashed: "Klarnas betalingsskjema sluttet å virke.",
        FieldEmail: "e-postadresse",
        FieldPhone: "telefonnummer",
        FieldName: "navn",
        FieldStreet: "gateadresse",
        FieldPostalCode: "postnummer",
        FieldCity: "sted",
        FieldCountry: "land",
        FieldBirthDate: "fødselsdato",
        FieldNationalId: "fødselsnummer",
        FieldOther: "andre opplysninger",
    },
    // Finnish
    texts! {
        Loading: "Ladataan Klarnaa…",
        Pay: "Maksa Klarnalla",
        OpenModal: "Maksa Klarnalla",
        DialogTitle: "Maksa Klarnalla",
        Close: "Sulje",
        Choose: "Valitse maksutapa",
        Waiting: "Odotetaan Klarnaa…",
        ConfirmIntro: "Klarna hyväksyi ostoksesi. Vahvista se viimeistelläksesi tilauksen.",
        Confirm: "Vahvista osto",
        Placing: "Maksuasi vahvistetaan…",
        Authorized: "Kiitos! Klarna-maksusi on vahvistettu.",
        Pending: "Kiitos! Klarna tarkistaa ostoksesi; kuulet meistä pian.",
        Declined: "Klarna ei voinut hyväksyä ostosta. Valitse toinen maksutapa.",
        CategoryUnavailable: "Tämä Klarna-vaihtoehto ei ole käytettävissä tälle ostokselle. Valitse toinen.",
        Unavailable: "Klarna ei ole käytettävissä tälle ostokselle. Valitse toinen maksutapa.",
        InvalidFields: "Tarkista nämä tiedot",
        CartChanged: "Ostoskorisi muuttui. Tarkista uusi summa ja maksa uudelleen.",
        Retry: "Yritä uudelleen",
        Reload: "Lataa sivu uudelleen",
        ErrorGeneric: "Klarnan kanssa tapahtui virhe.",
        ErrorSdkLoad: "Klarnaa ei voitu ladata. Tarkista yhteys ja yritä uudelleen.",
        ErrorTimeout: "Klarna vastaa liian hitaasti.",
        ErrorNetwork: "Maksupalveluun ei saatu yhteyttä.",
        ErrorOrder: "Tilausta ei voi maksaa Klarnalla. Ota yhteyttä kauppaan.",
        ErrorMarket: "Klarna ei hyväksy tätä valuuttaa laskutusmaassasi. Valitse toinen maksutapa.",
        ErrorExpired: "Klarna-hyväksyntäsi vanheni. Maksa uudelleen.",
        Crashed: "Klarnan maksulomake lakkasi toimimasta.",
        FieldEmail: "sähköpostiosoite",
        FieldPhone: "puhelinnumero",
        FieldName: "nimi",
        FieldStreet: "katuosoite",
        FieldPostalCode: "postinumero",
        FieldCity: "postitoimipaikka",
        FieldCountry: "maa",
        FieldBirthDate: "syntymäaika",
        FieldNationalId: "henkilötunnus",
        FieldOther: "muut tiedot",
    },
    // Danish
    texts! {
        Loading: "Indlæser Klarna …",
        Pay: "Betal med Klarna",
        OpenModal: "Betal med Klarna",
        DialogTitle: "Betal med Klarna",
        Close: "Luk",
        Choose: "Vælg, hvordan du vil betale",
        Waiting: "Venter på Klarna …",
        ConfirmIntro: "Klarna har godkendt dit køb. Bekræft det for at gennemføre ordren.",
        Confirm: "Bekræft købet",
        Placing: "Din betaling bekræftes …",
        Authorized: "Tak! Din betaling med Klarna er bekræftet.",
        Pending: "Tak! Klarna gennemgår dit køb; du hører snart fra os.",
        Declined: "Klarna kunne ikke godkende købet. Vælg en anden betalingsmetode.",
        CategoryUnavailable: "Denne Klarna-mulighed er ikke tilgængelig for købet. Vælg en anden.",
        Unavailable: "Klarna er ikke tilgængelig for dette køb. Vælg en anden betalingsmetode.",
        InvalidFields: "Kontrollér disse oplysninger",
        CartChanged: "Din kurv er ændret. Kontrollér det nye beløb, og betal igen.",
        Retry: "Prøv igen",
        Reload: "Genindlæs siden",
        ErrorGeneric: "Noget gik galt med Klarna.",
        ErrorSdkLoad: "Klarna kunne ikke indlæses. Tjek forbindelsen, og prøv igen.",
        ErrorTimeout: "Klarna er for længe om at svare.",
        ErrorNetwork: "Betalingstjenesten kunne ikke nås.",
        ErrorOrder: "Ordren kan ikke betales med Klarna. Kontakt butikken.",
        ErrorMarket: "Klarna modtager ikke denne valuta i dit faktureringsland. Vælg en anden betalingsmetode.",
        ErrorExpired: "Din Klarna-godkendelse er udløbet. Betal igen.",
        Crashed: "Klarnas betalingsformular holdt op med at virke.",
        FieldEmail: "e-mailadresse",
        FieldPhone: "telefonnummer",
        FieldName: "navn",
        FieldStreet: "adresse",
        FieldPostalCode: "postnummer",
        FieldCity: "by",
        FieldCountry: "land",
        FieldBirthDate: "fødselsdato",
        FieldNationalId: "CPR-nummer",
        FieldOther: "andre oplysninger",
    },
    // Dutch
    texts! {
        Loading: "Klarna wordt geladen…",
        Pay: "Betalen met Klarna",
        OpenModal: "Betalen met Klarna",
        DialogTitle: "Betalen met Klarna",
        Close: "Sluiten",
        Choose: "Kies hoe je wilt betalen",
        Waiting: "Wachten op Klarna…",
        ConfirmIntro: "Klarna heeft je aankoop goedgekeurd. Bevestig om je bestelling af te ronden.",
        Confirm: "Aankoop bevestigen",
        Placing: "Je betaling wordt bevestigd…",
        Authorized: "Bedankt! Je betaling met Klarna is bevestigd.",
        Pending: "Bedankt! Klarna beoordeelt je aankoop; je hoort snel van ons.",
        Declined: "Klarna kon deze aankoop niet goedkeuren. Kies een andere betaalmethode.",
        CategoryUnavailable: "Deze Klarna-optie is niet beschikbaar voor deze aankoop. Kies een andere.",
        Unavailable: "Klarna is niet beschikbaar voor deze aankoop. Kies een andere betaalmethode.",
        InvalidFields: "Controleer deze gegevens",
        CartChanged: "Je winkelwagen is gewijzigd. Controleer het nieuwe totaal en betaal opnieuw.",
        Retry: "Opnieuw proberen",
        Reload: "Pagina opnieuw laden",
        ErrorGeneric: "Er ging iets mis met Klarna.",
        ErrorSdkLoad: "Klarna kon niet worden geladen. Controleer je verbinding en probeer het opnieuw.",
        ErrorTimeout: "Klarna reageert te traag.",
        ErrorNetwork: "De betaaldienst is niet bereikbaar.",
        ErrorOrder: "Deze bestelling kan niet met Klarna worden betaald. Neem contact op met de winkel.",
        ErrorMarket: "Klarna accepteert deze valuta niet in je factuurland. Kies een andere betaalmethode.",
        ErrorExpired: "Je Klarna-goedkeuring is verlopen. Betaal opnieuw.",
        Crashed: "Het betaalformulier van Klarna werkt niet meer.",
        FieldEmail: "e-mailadres",
        FieldPhone: "telefoonnummer",
        FieldName: "naam",
        FieldStreet: "straat en huisnummer",
        FieldPostalCode: "postcode",
        FieldCity: "plaats",
        FieldCountry: "land",
        FieldBirthDate: "geboortedatum",
        FieldNationalId: "burgerservicenummer",
        FieldOther: "overige gegevens",
    },
    // French
    texts! {
        Loading: "Chargement de Klarna…",
        Pay: "Payer avec Klarna",
        OpenModal: "Payer avec Klarna",
        DialogTitle: "Payer avec Klarna",
        Close: "Fermer",
        Choose: "Choisissez comment payer",
        Waiting: "En attente de Klarna…",
        ConfirmIntro: "Klarna a approuvé votre achat. Confirmez-le pour finaliser la commande.",
        Confirm: "Confirmer l’achat",
        Placing: "Confirmation de votre paiement…",
        Authorized: "Merci ! Votre paiement avec Klarna est confirmé.",
        Pending: "Merci ! Klarna examine votre achat ; nous revenons vers vous rapidement.",
        Declined: "Klarna n’a pas pu approuver cet achat. Veuillez choisir un autre moyen de paiement.",
        CategoryUnavailable: "Cette option Klarna n’est pas disponible pour cet achat. Veuillez en choisir une autre.",
        Unavailable: "Klarna n’est pas disponible pour cet achat. Veuillez choisir un autre moyen de paiement.",
        InvalidFields: "Veuillez vérifier ces informations",
        CartChanged: "Votre panier a changé. Vérifiez le nouveau total et payez à nouveau.",
        Retry: "Réessayer",
        Reload: "Recharger la page",
        ErrorGeneric: "Un problème est survenu avec Klarna.",
        ErrorSdkLoad: "Klarna n’a pas pu être chargé. Vérifiez votre connexion et réessayez.",
        ErrorTimeout: "Klarna met trop de temps à répondre.",
        ErrorNetwork: "Le service de paiement est injoignable.",
        ErrorOrder: "Cette commande ne peut pas être payée avec Klarna. Veuillez contacter la boutique.",
        ErrorMarket: "Klarna n’accepte pas cette devise dans votre pays de facturation. Veuillez choisir un autre moyen de paiement.",
        ErrorExpired: "Votre approbation Klarna a expiré. Veuillez payer à nouveau.",
        Crashed: "Le formulaire de paiement Klarna ne fonctionne plus.",
        FieldEmail: "adresse e-mail",
        FieldPhone: "numéro de téléphone",
        FieldName: "nom",
        FieldStreet: "adresse",
        FieldPostalCode: "code postal",
        FieldCity: "ville",
        FieldCountry: "pays",
        FieldBirthDate: "date de naissance",
        FieldNationalId: "numéro d’identité",
        FieldOther: "autres informations",
    },
    // Spanish
    texts! {
        Loading: "Cargando Klarna…",
        Pay: "Pagar con Klarna",
        OpenModal: "Pagar con Klarna",
        DialogTitle: "Pagar con Klarna",
        Close: "Cerrar",
        Choose: "Elige cómo pagar",
        Waiting: "Esperando a Klarna…",
        ConfirmIntro: "Klarna ha aprobado tu compra. Confírmala para completar el pedido.",
        Confirm: "Confirmar compra",
        Placing: "Confirmando tu pago…",
        Authorized: "¡Gracias! Tu pago con Klarna está confirmado.",
        Pending: "¡Gracias! Klarna está revisando tu compra; pronto tendrás noticias.",
        Declined: "Klarna no ha podido aprobar esta compra. Elige otro método de pago.",
        CategoryUnavailable: "Esta opción de Klarna no está disponible para esta compra. Elige otra.",
        Unavailable: "Klarna no está disponible para esta compra. Elige otro método de pago.",
        InvalidFields: "Revisa estos datos",
        CartChanged: "Tu carrito ha cambiado. Revisa el nuevo total y vuelve a pagar.",
        Retry: "Reintentar",
        Reload: "Recargar la página",
        ErrorGeneric: "Algo ha fallado con Klarna.",
        ErrorSdkLoad: "No se ha podido cargar Klarna. Comprueba tu conexión y vuelve a intentarlo.",
        ErrorTimeout: "Klarna está tardando demasiado en responder.",
        ErrorNetwork: "No se ha podido contactar con el servicio de pago.",
        ErrorOrder: "Este pedido no se puede pagar con Klarna. Ponte en contacto con la tienda.",
        ErrorMarket: "Klarna no acepta esta moneda en tu país de facturación. Elige otro método de pago.",
        ErrorExpired: "Tu aprobación de Klarna ha caducado. Vuelve a pagar.",
        Crashed: "El formulario de pago de Klarna ha dejado de funcionar.",
        FieldEmail: "correo electrónico",
        FieldPhone: "número de teléfono",
        FieldName: "nombre",
        FieldStreet: "dirección",
        FieldPostalCode: "código postal",
        FieldCity: "ciudad",
        FieldCountry: "país",
        FieldBirthDate: "fecha de nacimiento",
        FieldNationalId: "número de identidad",
        FieldOther: "otros datos",
    },
    // Italian
    texts! {
        Loading: "Caricamento di Klarna…",
        Pay: "Paga con Klarna",
        OpenModal: "Paga con Klarna",
        DialogTitle: "Paga con Klarna",
        Close: "Chiudi",
        Choose: "Scegli come pagare",
        Waiting: "In attesa di Klarna…",
        ConfirmIntro: "Klarna ha approvato il tuo acquisto. Confermalo per completare l’ordine.",
        Confirm: "Conferma l’acquisto",
        Placing: "Conferma del pagamento in corso…",
        Authorized: "Grazie! Il tuo pagamento con Klarna è confermato.",
        Pending: "Grazie! Klarna sta verificando il tuo acquisto; ti aggiorneremo a breve.",
        Declined: "Klarna non ha potuto approvare questo acquisto. Scegli un altro metodo di pagamento.",
        CategoryUnavailable: "Questa opzione di Klarna non è disponibile per questo acquisto. Scegline un’altra.",
        Unavailable: "Klarna non è disponibile per questo acquisto. Scegli un altro metodo di pagamento.",
        InvalidFields: "Controlla questi dati",
        CartChanged: "Il carrello è stato modificato. Controlla il nuovo totale e ripeti il pagamento.",
        Retry: "Riprova",
        Reload: "Ricarica la pagina",
        ErrorGeneric: "Si è verificato un problema con Klarna.",
        ErrorSdkLoad: "Impossibile caricare Klarna. Controlla la connessione e riprova.",
        ErrorTimeout: "Klarna sta impiegando troppo tempo a rispondere.",
        ErrorNetwork: "Impossibile contattare il servizio di pagamento.",
        ErrorOrder: "Questo ordine non può essere pagato con Klarna. Contatta il negozio.",
        ErrorMarket: "Klarna non accetta questa valuta nel tuo paese di fatturazione. Scegli un altro metodo di pagamento.",
        ErrorExpired: "L’approvazione di Klarna è scaduta. Ripeti il pagamento.",
        Crashed: "Il modulo di pagamento di Klarna ha smesso di funzionare.",
        FieldEmail: "indirizzo e-mail",
        FieldPhone: "numero di telefono",
        FieldName: "nome e cognome",
        FieldStreet: "indirizzo",
        FieldPostalCode: "codice postale",
        FieldCity: "città",
        FieldCountry: "paese",
        FieldBirthDate: "data di nascita",
        FieldNationalId: "codice fiscale",
        FieldOther: "altri dati",
    },
    // Polish
    texts! {
        Loading: "Ładowanie Klarny…",
        Pay: "Zapłać z Klarną",
        OpenModal: "Zapłać z Klarną",
        DialogTitle: "Zapłać z Klarną",
        Close: "Zamknij",
        Choose: "Wybierz sposób płatności",
        Waiting: "Oczekiwanie na Klarnę…",
        ConfirmIntro: "Klarna zaakceptowała zakup. Potwierdź go, aby sfinalizować zamówienie.",
        Confirm: "Potwierdź zakup",
        Placing: "Potwierdzanie płatności…",
        Authorized: "Dziękujemy! Płatność przez Klarnę została potwierdzona.",
        Pending: "Dziękujemy! Klarna sprawdza zakup; wkrótce damy Ci znać.",
        Declined: "Klarna nie mogła zaakceptować tego zakupu. Wybierz inny sposób płatności.",
        CategoryUnavailable: "Ta opcja Klarny jest niedostępna dla tego zakupu. Wybierz inną.",
        Unavailable: "Klarna jest niedostępna dla tego zakupu. Wybierz inny sposób płatności.",
        InvalidFields: "Sprawdź te dane",
        CartChanged: "Zawartość koszyka się zmieniła. Sprawdź nową kwotę i zapłać ponownie.",
        Retry: "Spróbuj ponownie",
        Reload: "Odśwież stronę",
        ErrorGeneric: "Wystąpił problem z Klarną.",
        ErrorSdkLoad: "Nie udało się załadować Klarny. Sprawdź połączenie i spróbuj ponownie.",
        ErrorTimeout: "Klarna zbyt długo nie odpowiada.",
        ErrorNetwork: "Nie udało się połączyć z usługą płatności.",
        ErrorOrder: "Tego zamówienia nie można opłacić przez Klarnę. Skontaktuj się ze sklepem.",
        ErrorMarket: "Klarna nie obsługuje tej waluty w kraju Twojego adresu rozliczeniowego. Wybierz inny sposób płatności.",
        ErrorExpired: "Zatwierdzenie płatności przez Klarnę wygasło. Zapłać ponownie.",
        Crashed: "Formularz płatności Klarna przestał działać.",
        FieldEmail: "adres e-mail",
        FieldPhone: "numer telefonu",
        FieldName: "imię i nazwisko",
        FieldStreet: "ulica i numer domu",
        FieldPostalCode: "kod pocztowy",
        FieldCity: "miejscowość",
        FieldCountry: "kraj",
        FieldBirthDate: "data urodzenia",
        FieldNationalId: "numer PESEL",
        FieldOther: "inne dane",
    },
    // Czech
    texts! {
        Loading: "Načítá se Klarna…",
        Pay: "Zaplatit s Klarnou",
        OpenModal: "Zaplatit s Klarnou",
        DialogTitle: "Zaplatit s Klarnou",
        Close: "Zavřít",
        Choose: "Zvolte způsob platby",
        Waiting: "Čekáme na Klarnu…",
        ConfirmIntro: "Klarna nákup schválila. Potvrďte ho, abyste dokončili objednávku.",
        Confirm: "Potvrdit nákup",
        Placing: "Potvrzujeme platbu…",
        Authorized: "Děkujeme! Platba přes Klarnu byla potvrzena.",
        Pending: "Děkujeme! Klarna nákup ověřuje; brzy se vám ozveme.",
        Declined: "Klarna tento nákup nemohla schválit. Zvolte jiný způsob platby.",
        CategoryUnavailable: "Tato možnost Klarny není pro tento nákup k dispozici. Zvolte jinou.",
        Unavailable: "Klarna není pro tento nákup k dispozici. Zvolte jiný způsob platby.",
        InvalidFields: "Zkontrolujte tyto údaje",
        CartChanged: "Obsah košíku se změnil. Zkontrolujte novou celkovou částku a zaplaťte znovu.",
        Retry: "Zkusit znovu",
        Reload: "Načíst stránku znovu",
        ErrorGeneric: "Při platbě přes Klarnu došlo k chybě.",
        ErrorSdkLoad: "Klarnu se nepodařilo načíst. Zkontrolujte připojení a zkuste to znovu.",
        ErrorTimeout: "Klarna odpovídá příliš dlouho.",
        ErrorNetwork: "Nepodařilo se spojit s platební službou.",
        ErrorOrder: "Tuto objednávku nelze zaplatit přes Klarnu. Obraťte se na obchod.",
        ErrorMarket: "Klarna nepřijímá tuto měnu v zemi vaší fakturační adresy. Zvolte jiný způsob platby.",
        ErrorExpired: "Platnost schválení od Klarny vypršela. Zaplaťte znovu.",
        Crashed: "Platební formulář Klarna přestal fungovat.",
        FieldEmail: "e-mailová adresa",
        FieldPhone: "telefonní číslo",
        FieldName: "jméno a příjmení",
        FieldStreet: "ulice a číslo domu",
        FieldPostalCode: "PSČ",
        FieldCity: "obec",
        FieldCountry: "země",
        FieldBirthDate: "datum narození",
        FieldNationalId: "rodné číslo",
        FieldOther: "další údaje",
    },
    // Portuguese (Portugal)
    texts! {
        Loading: "A carregar a Klarna…",
        Pay: "Pagar com Klarna",
        OpenModal: "Pagar com Klarna",
        DialogTitle: "Pagar com Klarna",
        Close: "Fechar",
        Choose: "Escolha como pretende pagar",
        Waiting: "A aguardar a Klarna…",
        ConfirmIntro: "A Klarna aprovou a sua compra. Confirme-a para concluir a encomenda.",
        Confirm: "Confirmar compra",
        Placing: "A confirmar o pagamento…",
        Authorized: "Obrigado! O seu pagamento com Klarna está confirmado.",
        Pending: "Obrigado! A Klarna está a analisar a sua compra; entraremos em contacto brevemente.",
        Declined: "A Klarna não conseguiu aprovar esta compra. Escolha outro método de pagamento.",
        CategoryUnavailable: "Esta opção da Klarna não está disponível para esta compra. Escolha outra.",
        Unavailable: "A Klarna não está disponível para esta compra. Escolha outro método de pagamento.",
        InvalidFields: "Verifique estes dados",
        CartChanged: "O seu carrinho foi alterado. Verifique o novo total e pague novamente.",
        Retry: "Tentar novamente",
        Reload: "Recarregar a página",
        ErrorGeneric: "Ocorreu um erro com a Klarna.",
        ErrorSdkLoad: "Não foi possível carregar a Klarna. Verifique a sua ligação e tente novamente.",
        ErrorTimeout: "A Klarna está a demorar demasiado a responder.",
        ErrorNetwork: "Não foi possível contactar o serviço de pagamento.",
        ErrorOrder: "Esta encomenda não pode ser paga com Klarna. Contacte a loja.",
        ErrorMarket: "A Klarna não aceita esta moeda no seu país de faturação. Escolha outro método de pagamento.",
        ErrorExpired: "A aprovação da Klarna expirou. Pague novamente.",
        Crashed: "O formulário de pagamento da Klarna deixou de funcionar.",
        FieldEmail: "endereço de e-mail",
        FieldPhone: "número de telefone",
        FieldName: "nome",
        FieldStreet: "morada",
        FieldPostalCode: "código postal",
        FieldCity: "localidade",
        FieldCountry: "país",
        FieldBirthDate: "data de nascimento",
        FieldNationalId: "número de identificação fiscal",
        FieldOther: "outros dados",
    },
    // Greek
    texts! {
        Loading: "Φόρτωση της Klarna…",
        Pay: "Πληρωμή με Klarna",
        OpenModal: "Πληρωμή με Klarna",
        DialogTitle: "Πληρωμή με Klarna",
        Close: "Κλείσιμο",
        Choose: "Επιλέξτε τρόπο πληρωμής",
        Waiting: "Αναμονή για την Klarna…",
        ConfirmIntro: "Η Klarna ενέκρινε την αγορά σας. Επιβεβαιώστε την για να ολοκληρωθεί η παραγγελία.",
        Confirm: "Επιβεβαίωση αγοράς",
        Placing: "Γίνεται επιβεβαίωση της πληρωμής σας…",
        Authorized: "Ευχαριστούμε! Η πληρωμή σας με Klarna επιβεβαιώθηκε.",
        Pending: "Ευχαριστούμε! Η Klarna εξετάζει την αγορά σας και σύντομα θα έχετε νέα μας.",
        Declined: "Η Klarna δεν μπόρεσε να εγκρίνει αυτή την αγορά. Επιλέξτε άλλον τρόπο πληρωμής.",
        CategoryUnavailable: "Αυτή η επιλογή της Klarna δεν είναι διαθέσιμη για αυτή την αγορά. Επιλέξτε άλλη.",
        Unavailable: "Η Klarna δεν είναι διαθέσιμη για αυτή την αγορά. Επιλέξτε άλλον τρόπο πληρωμής.",
        InvalidFields: "Ελέγξτε τα παρακάτω στοιχεία",
        CartChanged: "Το καλάθι σας άλλαξε. Ελέγξτε το νέο σύνολο και πληρώστε ξανά.",
        Retry: "Δοκιμάστε ξανά",
        Reload: "Ανανέωση σελίδας",
        ErrorGeneric: "Παρουσιάστηκε σφάλμα με την Klarna.",
        ErrorSdkLoad: "Δεν ήταν δυνατή η φόρτωση της Klarna. Ελέγξτε τη σύνδεσή σας και δοκιμάστε ξανά.",
        ErrorTimeout: "Η Klarna αργεί πολύ να απαντήσει.",
        ErrorNetwork: "Δεν ήταν δυνατή η σύνδεση με την υπηρεσία πληρωμών.",
        ErrorOrder: "Αυτή η παραγγελία δεν μπορεί να πληρωθεί με Klarna. Επικοινωνήστε με το κατάστημα.",
        ErrorMarket: "Η Klarna δεν δέχεται αυτό το νόμισμα στη χώρα χρέωσής σας. Επιλέξτε άλλον τρόπο πληρωμής.",
        ErrorExpired: "Η έγκριση της Klarna έληξε. Πληρώστε ξανά.",
        Crashed: "Η φόρμα πληρωμής της Klarna σταμάτησε να λειτουργεί.",
        FieldEmail: "διεύθυνση email",
        FieldPhone: "αριθμός τηλεφώνου",
        FieldName: "ονοματεπώνυμο",
        FieldStreet: "οδός και αριθμός",
        FieldPostalCode: "ταχυδρομικός κώδικας",
        FieldCity: "πόλη",
        FieldCountry: "χώρα",
        FieldBirthDate: "ημερομηνία γέννησης",
        FieldNationalId: "αριθμός ταυτότητας",
        FieldOther: "άλλα στοιχεία",
    },
    // Hungarian
    texts! {
        Loading: "A Klarna betöltése…",
        Pay: "Fizetés Klarnával",
        OpenModal: "Fizetés Klarnával",
        DialogTitle: "Fizetés Klarnával",
        Close: "Bezárás",
        Choose: "Válassza ki a fizetési módot",
        Waiting: "Várakozás a Klarnára…",
        ConfirmIntro: "A Klarna jóváhagyta a vásárlást. A rendelés befejezéséhez erősítse meg.",
        Confirm: "Vásárlás megerősítése",
        Placing: "A fizetés megerősítése folyamatban…",
        Authorized: "Köszönjük! A Klarnával történt fizetését megerősítettük.",
        Pending: "Köszönjük! A Klarna ellenőrzi a vásárlást; hamarosan jelentkezünk.",
        Declined: "A Klarna nem tudta jóváhagyni ezt a vásárlást. Válasszon másik fizetési módot.",
        CategoryUnavailable: "Ez a Klarna-lehetőség nem érhető el ehhez a vásárláshoz. Válasszon egy másikat.",
        Unavailable: "A Klarna nem érhető el ehhez a vásárláshoz. Válasszon másik fizetési módot.",
        InvalidFields: "Kérjük, ellenőrizze az alábbi adatokat",
        CartChanged: "A kosár tartalma megváltozott. Ellenőrizze az új végösszeget, és fizessen újra.",
        Retry: "Újrapróbálkozás",
        Reload: "Oldal újratöltése",
        ErrorGeneric: "Hiba történt a Klarna használata közben.",
        ErrorSdkLoad: "A Klarna betöltése nem sikerült. Ellenőrizze az internetkapcsolatot, és próbálja újra.",
        ErrorTimeout: "A Klarna túl sokáig nem válaszol.",
        ErrorNetwork: "A fizetési szolgáltatás nem érhető el.",
        ErrorOrder: "Ez a rendelés nem fizethető ki Klarnával. Kérjük, forduljon a webáruházhoz.",
        ErrorMarket: "A Klarna nem fogadja el ezt a pénznemet a számlázási cím országában. Válasszon másik fizetési módot.",
        ErrorExpired: "A Klarna jóváhagyása lejárt. Kérjük, fizessen újra.",
        Crashed: "A Klarna fizetési űrlapja leállt.",
        FieldEmail: "e-mail-cím",
        FieldPhone: "telefonszám",
        FieldName: "név",
        FieldStreet: "utca és házszám",
        FieldPostalCode: "irányítószám",
        FieldCity: "település",
        FieldCountry: "ország",
        FieldBirthDate: "születési dátum",
        FieldNationalId: "személyi azonosító",
        FieldOther: "egyéb adatok",
    },
    // Romanian
    texts! {
        Loading: "Se încarcă Klarna…",
        Pay: "Plătiți cu Klarna",
        OpenModal: "Plătiți cu Klarna",
        DialogTitle: "Plătiți cu Klarna",
        Close: "Închideți",
        Choose: "Alegeți modalitatea de plată",
        Waiting: "Se așteaptă răspunsul de la Klarna…",
        ConfirmIntro: "Klarna a aprobat achiziția. Confirmați-o pentru a finaliza comanda.",
        Confirm: "Confirmați achiziția",
        Placing: "Se confirmă plata…",
        Authorized: "Vă mulțumim! Plata cu Klarna a fost confirmată.",
        Pending: "Vă mulțumim! Klarna analizează achiziția; veți primi în curând vești de la noi.",
        Declined: "Klarna nu a putut aproba această achiziție. Alegeți o altă modalitate de plată.",
        CategoryUnavailable: "Această opțiune Klarna nu este disponibilă pentru această achiziție. Alegeți alta.",
        Unavailable: "Klarna nu este disponibilă pentru această achiziție. Alegeți o altă modalitate de plată.",
        InvalidFields: "Verificați aceste date",
        CartChanged: "Coșul de cumpărături s-a modificat. Verificați noul total și plătiți din nou.",
        Retry: "Încercați din nou",
        Reload: "Reîncărcați pagina",
        ErrorGeneric: "A apărut o problemă cu Klarna.",
        ErrorSdkLoad: "Klarna nu a putut fi încărcată. Verificați conexiunea și încercați din nou.",
        ErrorTimeout: "Klarna întârzie prea mult să răspundă.",
        ErrorNetwork: "Serviciul de plată nu a putut fi contactat.",
        ErrorOrder: "Această comandă nu poate fi plătită cu Klarna. Contactați magazinul.",
        ErrorMarket: "Klarna nu acceptă această monedă în țara dumneavoastră de facturare. Alegeți o altă modalitate de plată.",
        ErrorExpired: "Aprobarea Klarna a expirat. Plătiți din nou.",
        Crashed: "Formularul de plată Klarna nu mai funcționează.",
        FieldEmail: "adresa de e-mail",
        FieldPhone: "numărul de telefon",
        FieldName: "numele",
        FieldStreet: "strada și numărul",
        FieldPostalCode: "codul poștal",
        FieldCity: "localitatea",
        FieldCountry: "țara",
        FieldBirthDate: "data nașterii",
        FieldNationalId: "codul numeric personal",
        FieldOther: "alte detalii",
    },
    // Slovak
    texts! {
        Loading: "Načítava sa Klarna…",
        Pay: "Zaplatiť s Klarnou",
        OpenModal: "Zaplatiť s Klarnou",
        DialogTitle: "Zaplatiť s Klarnou",
        Close: "Zavrieť",
        Choose: "Zvoľte spôsob platby",
        Waiting: "Čakáme na Klarnu…",
        ConfirmIntro: "Klarna nákup schválila. Potvrďte ho, aby ste dokončili objednávku.",
        Confirm: "Potvrdiť nákup",
        Placing: "Potvrdzujeme platbu…",
        Authorized: "Ďakujeme! Platba cez Klarnu bola potvrdená.",
        Pending: "Ďakujeme! Klarna nákup overuje; čoskoro sa vám ozveme.",
        Declined: "Klarna tento nákup nemohla schváliť. Zvoľte iný spôsob platby.",
        CategoryUnavailable: "Táto možnosť Klarny nie je pre tento nákup dostupná. Zvoľte inú.",
        Unavailable: "Klarna nie je pre tento nákup dostupná. Zvoľte iný spôsob platby.",
        InvalidFields: "Skontrolujte tieto údaje",
        CartChanged: "Obsah košíka sa zmenil. Skontrolujte novú celkovú sumu a zaplaťte znova.",
        Retry: "Skúsiť znova",
        Reload: "Znova načítať stránku",
        ErrorGeneric: "Pri platbe cez Klarnu nastala chyba.",
        ErrorSdkLoad: "Klarnu sa nepodarilo načítať. Skontrolujte pripojenie a skúste to znova.",
        ErrorTimeout: "Klarna odpovedá príliš dlho.",
        ErrorNetwork: "Nepodarilo sa spojiť s platobnou službou.",
        ErrorOrder: "Túto objednávku nie je možné zaplatiť cez Klarnu. Obráťte sa na obchod.",
        ErrorMarket: "Klarna neprijíma túto menu v krajine vašej fakturačnej adresy. Zvoľte iný spôsob platby.",
        ErrorExpired: "Platnosť schválenia od Klarny vypršala. Zaplaťte znova.",
        Crashed: "Platobný formulár Klarna prestal fungovať.",
        FieldEmail: "e-mailová adresa",
        FieldPhone: "telefónne číslo",
        FieldName: "meno a priezvisko",
        FieldStreet: "ulica a číslo domu",
        FieldPostalCode: "PSČ",
        FieldCity: "obec",
        FieldCountry: "krajina",
        FieldBirthDate: "dátum narodenia",
        FieldNationalId: "rodné číslo",
        FieldOther: "ďalšie údaje",
    },
];

/// The text in `lang`.
pub fn t(lang: Lang, text: Text) -> &'static str {
    TEXTS[lang as usize]
        .split('\u{1f}')
        .nth(text as usize)
        .unwrap_or_default()
}

/// Klarna's `invalid_fields` entry (`billing_address.email`) in words.
pub fn field(lang: Lang, path: &str) -> &'static str {
    let last = path.rsplit('.').next().unwrap_or(path);
    let text = match last {
        "email" => Text::FieldEmail,
        "phone" => Text::FieldPhone,
        "given_name" | "family_name" | "title" => Text::FieldName,
        "street_address" | "street_address2" | "street_name" | "street_number" => Text::FieldStreet,
        "postal_code" => Text::FieldPostalCode,
        "city" => Text::FieldCity,
        "country" => Text::FieldCountry,
        "date_of_birth" => Text::FieldBirthDate,
        "national_identification_number" => Text::FieldNationalId,
        _ => Text::FieldOther,
    };
    t(lang, text)
}

/// "Please check these details: e-mail address, phone number." — what Klarna's form sent
/// back, or what of the order Klarna would refuse.
pub fn invalid_fields(lang: Lang, paths: &[String]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for p in paths {
        let name = field(lang, p);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    format!("{}: {}.", t(lang, Text::InvalidFields), names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_pick_their_language_and_fall_back_to_english() {
        for (locale, lang) in [
            ("de-DE", Lang::De),
            ("de-AT", Lang::De),
            ("sv-SE", Lang::Sv),
            ("nb-NO", Lang::Nb),
            ("no-NO", Lang::Nb),
            ("fi-FI", Lang::Fi),
            ("da_DK", Lang::Da),
            ("nl-NL", Lang::Nl),
            ("fr-BE", Lang::Fr),
            ("es-ES", Lang::Es),
            ("it-IT", Lang::It),
            ("it-CH", Lang::It),
            ("pl-PL", Lang::Pl),
            ("cs-CZ", Lang::Cs),
            ("pt-PT", Lang::Pt),
            ("el-GR", Lang::El),
            ("hu-HU", Lang::Hu),
            ("ro_RO", Lang::Ro),
            ("sk-SK", Lang::Sk),
            ("en-GB", Lang::En),
            ("ja-JP", Lang::En),
            ("", Lang::En),
        ] {
            assert_eq!(Lang::from_locale(locale), lang, "{locale}");
        }
    }

    #[test]
    fn every_language_has_its_own_words() {
        for lang in Lang::ALL {
            assert!(!t(lang, Text::Pay).is_empty());
            if lang != Lang::En {
                for text in [Text::Declined, Text::InvalidFields, Text::ErrorMarket] {
                    assert_ne!(t(lang, text), t(Lang::En, text), "{lang:?} {text:?}");
                }
            }
        }
    }

    #[test]
    fn all_languages_are_listed_once_in_column_order() {
        for (i, lang) in Lang::ALL.into_iter().enumerate() {
            assert_eq!(lang as usize, i, "{lang:?}");
        }
    }

    #[test]
    fn every_market_locale_has_its_language() {
        for (country, _, locales) in klarna_types::validate::MARKETS {
            for locale in *locales {
                let subtag = locale.split('-').next().unwrap();
                assert_eq!(
                    Lang::from_locale(locale).tag(),
                    subtag,
                    "{country} {locale} falls back to another language"
                );
            }
        }
    }

    fn index(text: Text) -> usize {
        match text {
            Text::Loading => 0,
            Text::Pay => 1,
            Text::OpenModal => 2,
            Text::DialogTitle => 3,
            Text::Close => 4,
            Text::Choose => 5,
            Text::Waiting => 6,
            Text::ConfirmIntro => 7,
            Text::Confirm => 8,
            Text::Placing => 9,
            Text::Authorized => 10,
            Text::Pending => 11,
            Text::Declined => 12,
            Text::CategoryUnavailable => 13,
            Text::Unavailable => 14,
            Text::InvalidFields => 15,
            Text::CartChanged => 16,
            Text::Retry => 17,
            Text::Reload => 18,
            Text::ErrorGeneric => 19,
            Text::ErrorSdkLoad => 20,
            Text::ErrorTimeout => 21,
            Text::ErrorNetwork => 22,
            Text::ErrorOrder => 23,
            Text::ErrorMarket => 24,
            Text::ErrorExpired => 25,
            Text::Crashed => 26,
            Text::FieldEmail => 27,
            Text::FieldPhone => 28,
            Text::FieldName => 29,
            Text::FieldStreet => 30,
            Text::FieldPostalCode => 31,
            Text::FieldCity => 32,
            Text::FieldCountry => 33,
            Text::FieldBirthDate => 34,
            Text::FieldNationalId => 35,
            Text::FieldOther => 36,
        }
    }

    #[test]
    fn no_text_is_empty_and_no_column_is_a_copy_of_english() {
        for (i, text) in Text::ALL.into_iter().enumerate() {
            assert_eq!(index(text), i, "{text:?} is listed out of place");
        }
        for lang in Lang::ALL {
            for text in Text::ALL {
                let words = t(lang, text);
                assert!(!words.trim().is_empty(), "{lang:?} {text:?} is empty");
                assert_eq!(words, words.trim(), "{lang:?} {text:?} has stray spaces");
            }
            if lang != Lang::En {
                let own = Text::ALL
                    .iter()
                    .filter(|&&text| t(lang, text) != t(Lang::En, text))
                    .count();
                assert!(
                    own * 5 >= Text::ALL.len() * 4,
                    "{lang:?}: only {own} of {} texts differ from English",
                    Text::ALL.len()
                );
            }
        }
    }

    #[test]
    fn no_text_holds_the_separator() {
        // One would shift every later text of its language by one.
        for (lang, texts) in Lang::ALL.into_iter().zip(TEXTS) {
            assert_eq!(
                texts.split('\u{1f}').count(),
                Text::ALL.len() + 1,
                "{lang:?}"
            );
        }
    }

    #[test]
    fn invalid_fields_are_named_in_words_once_each() {
        let fields = [
            "billing_address.email".to_owned(),
            "billing_address.given_name".to_owned(),
            "billing_address.family_name".to_owned(),
            "shipping_address.phone".to_owned(),
            "customer.something_new".to_owned(),
        ];
        assert_eq!(
            invalid_fields(Lang::En, &fields),
            "Please check these details: e-mail address, name, phone number, other details."
        );
        assert_eq!(
            field(Lang::De, "billing_address.postal_code"),
            "Postleitzahl"
        );
    }
}
