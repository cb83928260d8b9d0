; Inno Setup script: the GuruConnect agent for Windows (x64).
; NEVER RUN: written and unit-tested on Linux (tests/agent/test_windows_packaging.py checks
; the registry values and sc.exe calls below against guruconnect.agent.service).
;
; Build (on Windows, after packaging/windows/guruconnect.spec):
;   iscc /DAppVersion=0.1.0 packaging\windows\guruconnect.iss
; Install silently:
;   guruconnect-setup.exe /VERYSILENT /SERVER=https://support.example.com /KEYFILE=C:\path\agent.key
; /SERVER and /KEYFILE register the agent service; without them only the program and the
; guruconnect:// link handler are installed.

#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif

[Setup]
AppId={{6B0E4C1B-3D59-4F0A-9C51-2B8E1F3A7D42}
AppName=GuruConnect
AppVersion={#AppVersion}
AppPublisher=GuruConnect
DefaultDirName={autopf}\GuruConnect
DisableDirPage=yes
DisableProgramGroupPage=yes
PrivilegesRequired=admin
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=guruconnect-setup-windows-x86_64
UninstallDisplayIcon={app}\guruconnect.exe
Compression=lzma2
SolidCompression=yes

[Files]
Source: "..\..\dist\guruconnect-windows-x86_64.exe"; DestDir: "{app}"; DestName: "guruconnect.exe"; Flags: ignoreversion
Source: "{param:KeyFile}"; DestDir: "{commonappdata}\GuruConnect"; DestName: "agent.key"; Flags: external ignoreversion; Check: WithService

[Registry]
; The guruconnect:// URL handler (HKCU: per user).
; BEGIN url-handler
Root: HKCU; Subkey: "Software\Classes\guruconnect"; ValueType: string; ValueName: ""; ValueData: "URL:GuruConnect"; Flags: uninsdeletekey
Root: HKCU; Subkey: "Software\Classes\guruconnect"; ValueType: string; ValueName: "URL Protocol"; ValueData: ""
Root: HKCU; Subkey: "Software\Classes\guruconnect\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: """{app}\guruconnect.exe"",0"
Root: HKCU; Subkey: "Software\Classes\guruconnect\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\guruconnect.exe"" open-link ""%1"""
; END url-handler

[Run]
; The key file: SYSTEM and Administrators only, nothing inherited.
Filename: "{sys}\icacls.exe"; Parameters: """{commonappdata}\GuruConnect\agent.key"" /inheritance:r /grant:r *S-1-5-18:F *S-1-5-32-544:F"; Flags: runhidden waituntilterminated; Check: WithService
; The agent service.
; BEGIN service
Filename: "{sys}\sc.exe"; Parameters: "create GuruConnectAgent binPath= ""\""{app}\guruconnect.exe\"" agent --server {param:Server} --key-file {commonappdata}\GuruConnect\agent.key"" start= auto DisplayName= ""GuruConnect agent"" obj= LocalSystem"; Flags: runhidden waituntilterminated; Check: WithService
Filename: "{sys}\sc.exe"; Parameters: "description GuruConnectAgent ""GuruConnect agent (remote support)"""; Flags: runhidden waituntilterminated; Check: WithService
Filename: "{sys}\sc.exe"; Parameters: "failure GuruConnectAgent reset= 86400 actions= restart/5000/restart/5000/restart/5000"; Flags: runhidden waituntilterminated; Check: WithService
; END service
Filename: "{sys}\sc.exe"; Parameters: "start GuruConnectAgent"; Flags: runhidden waituntilterminated; Check: WithService

[UninstallRun]
Filename: "{sys}\sc.exe"; Parameters: "stop GuruConnectAgent"; Flags: runhidden waituntilterminated; RunOnceId: "StopService"
Filename: "{sys}\sc.exe"; Parameters: "delete GuruConnectAgent"; Flags: runhidden waituntilterminated; RunOnceId: "DeleteService"

[UninstallDelete]
Type: files; Name: "{commonappdata}\GuruConnect\agent.key"
Type: dirifempty; Name: "{commonappdata}\GuruConnect"

[Code]
function WithService(): Boolean;
begin
  Result := (ExpandConstant('{param:Server|}') <> '') and (ExpandConstant('{param:KeyFile|}') <> '');
end;
